package node

import (
	"context"
	"fmt"
	"runtime/debug"
	"sync"
	"time"
)

// Result is one key's outcome in a batch read.
type Result[V any] struct {
	Value V
	Err   error // as Get would return it (IsNotFound for a missing key)
}

// BatchLoader is an optional interface of a [Loader]: several keys in one
// source query (e.g. "SELECT id, body, version FROM t WHERE id = ANY($1)").
// LoadMany calls found once for each key it read, with the key's index in
// keys, its value and version, or an error of that key alone; a key it does
// not report is missing from the source (not found). An error of the call as
// a whole fails every key. GetMany uses it for the misses this node loads.
// The interface names no type of this package, so adapters (package
// loader's SQL) satisfy it without importing node.
type BatchLoader[V any] interface {
	LoadMany(ctx context.Context, keys []string, found func(i int, v V, version uint64, err error)) error
}

// loaded is one key of a BatchLoader's answer.
type loaded[V any] struct {
	value   V
	version uint64
	err     error
	seen    bool
}

// getManyParallel bounds the concurrent single-key reads a GetMany makes
// (owner fills, reads through an untrusted cache, keys a batch could not
// settle).
const getManyParallel = 16

// GetMany reads several keys at once and returns one Result per key, in the
// order of keys. Hits are served at hit cost; the misses this node loads go
// to the source in one query when the loader is a [BatchLoader]; the misses
// other members own are asked of each owner in one round trip (which loads
// its misses in one query); the rest (reads through an untrusted cache,
// Verified and Authoritative reads) are read concurrently, each as Get
// would. Every fence, floor and trust rule of Get holds for each key: a
// batched result below its floor, or fenced by an invalidation that landed
// meanwhile, is read again alone.
func (g *Group[V]) GetMany(ctx context.Context, keys []string, opts ...ReadOption) []Result[V] {
	mode := readCached
	for _, o := range opts {
		mode = max(mode, o.mode)
	}
	out := make([]Result[V], len(keys))
	var local, single []int
	var remote map[string][]int // owner address -> indexes
	bl, batchable := g.cfg.Loader.(BatchLoader[V])
	trusted := mode == readCached && g.servable()
	for i, k := range keys {
		if err := validKey("key", k); err != nil {
			out[i].Err = err
			continue
		}
		if e, ok := g.lookup(k, mode); ok {
			if e.Absent {
				out[i].Err = g.absent
			} else {
				out[i].Value = e.Value
			}
			continue
		}
		addr := ""
		if trusted && g.ownerFills() {
			addr = g.n.ownerOf(g.name, k)
		}
		switch {
		case !trusted:
			single = append(single, i)
		case addr != "":
			if remote == nil {
				remote = map[string][]int{}
			}
			remote[addr] = append(remote[addr], i)
		case batchable:
			local = append(local, i)
		default:
			single = append(single, i)
		}
	}
	if g.n.closed.Load() {
		for _, idx := range [][]int{local, single} {
			for _, i := range idx {
				out[i].Err = ErrClosed
			}
		}
		for _, idx := range remote {
			for _, i := range idx {
				out[i].Err = ErrClosed
			}
		}
		return out
	}
	// The owners' batches and this node's own batch run at once; keys an
	// owner could not be asked for are loaded here after (a second query).
	var mu sync.Mutex // guards single and here while the owners answer
	var here []int
	var wg sync.WaitGroup
	for addr, idx := range remote {
		g.ctr.add(cMisses, uint64(len(idx)))
		wg.Go(func() {
			again, fallback := g.fetchMany(ctx, addr, keys, idx, out)
			mu.Lock()
			single = append(single, again...)
			if batchable {
				here = append(here, fallback...)
			} else {
				single = append(single, fallback...)
			}
			mu.Unlock()
		})
	}
	if len(local) > 0 {
		g.ctr.add(cMisses, uint64(len(local)))
		again := g.loadMany(ctx, bl, keys, local, out)
		mu.Lock()
		single = append(single, again...)
		mu.Unlock()
	}
	wg.Wait()
	if len(here) > 0 {
		single = append(single, g.loadMany(ctx, bl, keys, here, out)...)
	}
	sem := make(chan struct{}, getManyParallel)
	for _, i := range single {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			v, _, err := g.get(ctx, keys[i], mode)
			out[i] = Result[V]{Value: v, Err: err}
		})
	}
	wg.Wait()
	return out
}

// loadMany loads keys[idx] in one BatchLoader call (batchLoad) and fills
// out. It returns the indexes the batch could not settle (below a floor,
// fenced): the caller reads them alone.
func (g *Group[V]) loadMany(ctx context.Context, bl BatchLoader[V], keys []string, idx []int, out []Result[V]) (again []int) {
	batch := make([]string, len(idx))
	for j, i := range idx {
		batch[j] = keys[i]
	}
	res, ok := g.batchLoad(ctx, bl, batch)
	for j, i := range idx {
		switch {
		case !ok:
			out[i].Err = ErrClosed
		case res[j].again:
			again = append(again, i)
		default:
			out[i] = Result[V]{Value: res[j].val, Err: res[j].err}
		}
	}
	return again
}

// callBatchLoader is callLoader for a batch: one load slot, one load
// counted, a panic recovered into an error.
func (g *Group[V]) callBatchLoader(ctx context.Context, bl BatchLoader[V], keys []string) (res []loaded[V], took time.Duration, err error) {
	if err := g.n.acquireLoad(ctx); err != nil {
		return nil, 0, err
	}
	defer g.n.releaseLoad()
	start := time.Now()
	defer func() {
		if p := recover(); p != nil {
			g.n.cfg.Logger.Error("batch loader panicked", "group", g.name, "keys", len(keys), "panic", p, "stack", string(debug.Stack()))
			err = fmt.Errorf("node: batch loader panicked: %v", p)
		}
		took = time.Since(start)
		g.ctr.inc(cLoads)
		g.ctr.inc(cFillsLocal)
		if err != nil {
			g.ctr.inc(cLoadErrors)
		}
		g.n.cfg.Observer.ObserveLoad(g.name, took, err)
	}()
	res = make([]loaded[V], len(keys))
	var bad error
	err = bl.LoadMany(ctx, keys, func(i int, v V, version uint64, kerr error) {
		if i < 0 || i >= len(res) {
			bad = fmt.Errorf("node: %s: LoadMany reported key index %d of %d", g.name, i, len(res))
			return
		}
		res[i] = loaded[V]{value: v, version: version, err: kerr, seen: true}
	})
	if err == nil {
		err = bad
	}
	return res, 0, err
}

// errBatchNotFound is a key a BatchLoader did not report.
var errBatchNotFound = notFoundError{}
