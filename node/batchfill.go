package node

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/nearcache/nearcache/node/internal/peer"
)

// Batched owner fills (GetMany's remote misses, issue 13): the requester
// groups its misses by owner and asks each owner for all of them in one
// round trip (peer.Client.FillMany); the owner answers its cached keys from
// memory and loads the rest in one BatchLoader query. Each key is fenced as
// a single owner fill is: the requester captures its fence before asking
// and admits each answer against it, and sends its exact floor, below which
// the owner may not answer. A key the batch cannot settle (below a floor,
// fenced meanwhile, refused, an owner error) is read again alone, through
// the single-key path with all its retries and back-off.

// batchOutcome is one key's result of a batch load.
type batchOutcome[V any] struct {
	val     V
	version uint64
	err     error // a LoadError (IsNotFound for a missing key)
	again   bool  // not settled: below its floor, or fenced meanwhile
}

// batchLoad loads keys in one BatchLoader call, fenced per key as a single
// fill is, and keeps what its fence admits. ok=false: the node is closing.
func (g *Group[V]) batchLoad(ctx context.Context, bl BatchLoader[V], keys []string) ([]batchOutcome[V], bool) {
	fences := make([]fence, len(keys))
	var stamp uint64
	if g.cfg.Versioning == ClockVersions {
		stamp = g.n.clock.now() - uint64(g.n.cfg.MaxClockSkew)
	}
	for j, k := range keys {
		fences[j] = g.capture(k) // before the source is asked (G8)
	}
	if !g.n.startFlight() {
		return nil, false
	}
	defer g.n.endFlight()
	lctx, cancel := context.WithTimeout(ctx, g.n.cfg.LoadTimeout)
	defer cancel()
	stop := context.AfterFunc(g.n.closing, cancel)
	defer stop()
	out := make([]batchOutcome[V], len(keys))
	res, took, err := g.callBatchLoader(lctx, bl, keys)
	if err != nil {
		for j, k := range keys {
			out[j].err = &LoadError{Group: g.name, Key: k, Err: err}
		}
		return out, true
	}
	for j, key := range keys {
		f, r, o := fences[j], res[j], &out[j]
		if !r.seen {
			r.err = errBatchNotFound
		}
		version := r.version
		if g.cfg.Versioning == ClockVersions {
			version = max(stamp, f.floor)
		}
		o.version = version
		switch {
		case r.err != nil && IsNotFound(r.err):
			fr := g.notFound(key, max(version, f.floor), f, took, r.err)
			o.version, o.err = fr.version, fr.err
			o.again = !g.admits(key, f, fr.version)
		case r.err != nil:
			o.err = &LoadError{Group: g.name, Key: key, Err: r.err}
		case version == 0 || version > MaxVersion:
			o.err = &LoadError{Group: g.name, Key: key, Err: fmt.Errorf("LoadMany returned version %d (want 1 to 2^63-1)", version)}
		case !g.admits(key, f, version):
			o.again = true // below its floor, or fenced meanwhile: read alone (retries, back-off)
		default:
			g.keep(key, f, r.value, version, took)
			o.val = r.value
		}
	}
	return out, true
}

// fetchMany asks the owner at addr for keys[idx] in one round trip and fills
// out. It returns the indexes the batch did not settle (read them alone)
// and, when the owner could not be reached at all, those to load here.
func (g *Group[V]) fetchMany(ctx context.Context, addr string, keys []string, idx []int, out []Result[V]) (again, here []int) {
	req := peer.BatchRequest{Group: g.name, Keys: make([]string, len(idx)), Floors: make([]uint64, len(idx))}
	fences := make([]fence, len(idx))
	for j, i := range idx {
		fences[j] = g.capture(keys[i]) // before the owner is asked (G8)
		req.Keys[j], req.Floors[j] = keys[i], fences[j].exact
	}
	if !g.n.startFlight() {
		for _, i := range idx {
			out[i].Err = ErrClosed
		}
		return nil, nil
	}
	defer g.n.endFlight()
	start := time.Now()
	rctx, cancel := context.WithTimeout(ctx, g.n.cfg.OwnerTimeout)
	resps, err := g.n.peerCl.FillMany(rctx, addr, req)
	cancel()
	took := time.Since(start)
	if err != nil {
		if ctx.Err() != nil { // our own caller's budget ended
			for _, i := range idx {
				out[i].Err = &LoadError{Group: g.name, Key: keys[i], Err: ctx.Err()}
			}
			return nil, nil
		}
		kind := cOwnerTransport
		if rctx.Err() != nil {
			kind = cOwnerTimeout
		}
		g.ctr.inc(kind)
		g.ctr.add(cFillsFallback, uint64(len(idx)))
		return nil, idx
	}
	for j, i := range idx {
		key, f, resp := keys[i], fences[j], resps[j]
		switch resp.Status {
		case peer.StatusOK:
			v, derr := g.cfg.Codec.Decode(resp.Value)
			if derr != nil || resp.Version == 0 || resp.Version > MaxVersion || !g.admits(key, f, resp.Version) {
				again = append(again, i)
				continue
			}
			g.ctr.inc(cFillsOwner)
			g.keep(key, f, v, resp.Version, took)
			out[i].Value = v
		case peer.StatusNotFound:
			g.ctr.inc(cFillsOwner)
			fr := g.notFound(key, max(resp.Version, f.floor), f, took, errOwnerNotFound)
			if !g.admits(key, f, fr.version) {
				again = append(again, i)
				continue
			}
			out[i].Err = fr.err
		default: // below floor, refused, overloaded, an error: the single path decides
			again = append(again, i)
		}
	}
	return again, nil
}

// fillHandler serves the node's owner fills, single and batched.
type fillHandler struct{ n *Node }

func (h fillHandler) Fill(ctx context.Context, req *peer.Request) peer.Response {
	return h.n.serveFill(ctx, req)
}

func (h fillHandler) FillMany(ctx context.Context, req *peer.BatchRequest) []peer.Response {
	out := make([]peer.Response, len(req.Keys))
	g := h.n.group(req.Group)
	var why string
	switch {
	case g == nil:
		why = fmt.Sprintf("unknown group %q", req.Group)
	case h.n.closed.Load():
		why = "closing"
	default:
		g.serveFillMany(ctx, req.Keys, req.Floors, out)
		return out
	}
	for i := range out {
		out[i] = peer.Response{Status: peer.StatusError, Err: why}
	}
	return out
}

// serveFillMany is the owner's side of a batch: keys cached here are
// answered from memory, the misses in one BatchLoader query when the loader
// is one (else one coalesced fill each, concurrently); a key the batch did
// not settle is served alone, as serveFill would.
func (g *Group[V]) serveFillMany(ctx context.Context, keys []string, floors []uint64, out []peer.Response) {
	bl, batch := g.cfg.Loader.(BatchLoader[V])
	var miss []int
	for i, k := range keys {
		if r, done := g.serveFromMemory(k, floors[i]); done {
			out[i] = r
			continue
		}
		miss = append(miss, i)
	}
	var alone []int
	if batch && len(miss) > 1 {
		mk := make([]string, len(miss))
		for j, i := range miss {
			mk[j] = keys[i]
		}
		res, ok := g.batchLoad(ctx, bl, mk)
		for j, i := range miss {
			switch o := res[j]; {
			case !ok:
				out[i] = peer.Response{Status: peer.StatusError, Err: "closing"}
			case o.again || o.version < floors[i]:
				alone = append(alone, i) // the single path notes, backs off, answers below-floor
			case o.err != nil && IsNotFound(o.err):
				out[i] = peer.Response{Status: peer.StatusNotFound}
			case o.err != nil:
				out[i] = peer.Response{Status: peer.StatusError, Err: o.err.Error()}
			default:
				out[i] = g.encodeResponse(o.val, o.version)
			}
		}
	} else {
		alone = miss
	}
	sem := make(chan struct{}, getManyParallel)
	var wg sync.WaitGroup
	for _, i := range alone {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			out[i] = g.serveLoad(ctx, keys[i], floors[i])
		})
	}
	wg.Wait()
}
