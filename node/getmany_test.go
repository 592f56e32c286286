package node

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/nearcache/nearcache/gossip/gossiptest"
)

// batchSource is source with a BatchLoader: one call reads every key asked.
type batchSource struct {
	*source
	batches atomic.Int32
	keys    atomic.Int32
	// hold, when set, runs after the rows were read and before they return.
	hold func()
}

func (b *batchSource) LoadMany(ctx context.Context, keys []string, found func(int, string, uint64, error)) error {
	b.batches.Add(1)
	b.keys.Add(int32(len(keys)))
	type hit struct {
		i int
		r row
	}
	var hits []hit
	b.mu.Lock()
	for i, k := range keys {
		if r, ok := b.rows[k]; ok {
			hits = append(hits, hit{i, r})
		}
	}
	b.mu.Unlock()
	if b.hold != nil {
		b.hold()
	}
	for _, h := range hits {
		found(h.i, h.r.val, h.r.ver, nil)
	}
	return ctx.Err()
}

func standaloneGroup(t *testing.T, l Loader[string]) *Group[string] {
	t.Helper()
	n, err := Start(context.Background(), Config{Name: "solo", Standalone: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close(context.Background()) })
	g, err := NewGroup(n, "rows", GroupConfig[string]{Loader: l, SampleEvery: -1})
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// TestGetManyOneQueryForTheMisses: 100 keys, 90 cached: the 10 misses cost
// one source query, the hits none; a missing key reports not found; a bad
// key its own error.
func TestGetManyOneQueryForTheMisses(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := &batchSource{source: newSource()}
		keys := make([]string, 100)
		for i := range keys {
			keys[i] = fmt.Sprintf("k%03d", i)
			src.put(keys[i], "v-"+keys[i])
		}
		g := standaloneGroup(t, src)
		for _, k := range keys[:90] {
			mustGet(t, g, k)
		}
		g.cache.Wait()
		before := src.loads()
		res := g.GetMany(t.Context(), append(keys, "absent", ""))
		if src.batches.Load() != 1 || src.keys.Load() != 11 || src.loads() != before {
			t.Errorf("%d batch queries for %d keys, %d single loads; want 1 query for the 11 misses and no single load",
				src.batches.Load(), src.keys.Load(), src.loads()-before)
		}
		for i, k := range keys {
			if res[i].Err != nil || res[i].Value != "v-"+k {
				t.Errorf("%s: %+v", k, res[i])
			}
		}
		if !IsNotFound(res[100].Err) {
			t.Errorf("absent key: %v, want not found", res[100].Err)
		}
		if res[101].Err == nil {
			t.Error("the empty key succeeded")
		}
		// The batch's values were stored: all hits now.
		g.cache.Wait()
		for i, r := range g.GetMany(t.Context(), keys) {
			if r.Err != nil || r.Value != "v-"+keys[i] {
				t.Errorf("second GetMany %s: %+v", keys[i], r)
			}
		}
		if src.batches.Load() != 1 {
			t.Errorf("%d batch queries after the misses were cached, want 1", src.batches.Load())
		}
	})
}

// TestGetManyFencedKeyReadAlone is G8 for batches: an invalidation that
// lands while the batch is on its way makes that key's batched value
// unusable; GetMany reads it again alone and returns the new version.
func TestGetManyFencedKeyReadAlone(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := &batchSource{source: newSource()}
		src.put("a", "a1")
		src.put("b", "b1")
		g := standaloneGroup(t, src)
		var once sync.Once
		src.hold = func() {
			once.Do(func() {
				ver := src.put("b", "b2") // committed while the batch is out
				if err := g.Invalidate(context.Background(), "b", ver); err != nil {
					t.Error(err)
				}
			})
		}
		res := g.GetMany(t.Context(), []string{"a", "b"})
		if res[0].Value != "a1" || res[1].Value != "b2" {
			t.Fatalf("GetMany = %+v; want a1 and b2 (b's batched b1 was fenced by its invalidation)", res)
		}
		if got := mustGet(t, g, "b"); got != "b2" {
			t.Errorf("b cached as %q after the batch", got)
		}
	})
}

// TestGetManyAcrossOwners: in a cluster, keys owned by other members come
// from their owners, the node's own misses from one batch.
func TestGetManyAcrossOwners(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := newSource()
		keys := make([]string, 30)
		for i := range keys {
			keys[i] = fmt.Sprintf("k%d", i)
			src.put(keys[i], keys[i])
		}
		nw := gossiptest.New(73)
		ms := fillCluster(t, nw, gossiptest.NewFillNetwork(nw), 3, src)
		res := ms[0].g.GetMany(t.Context(), keys)
		for i, r := range res {
			if r.Err != nil || r.Value != "1" { // nodeLoader returns the version as the value
				t.Errorf("%s: %+v", keys[i], r)
			}
		}
		st := ms[0].g.Stats()
		if st.FillsOwner == 0 {
			t.Error("no key was filled by its owner")
		}
	})
}

// batchNodeLoader is a member's nodeLoader with a LoadMany that counts its
// queries; hold, when set, runs after the rows were read, before they are
// returned.
type batchNodeLoader struct {
	*nodeLoader
	queries *atomic.Int32
	hold    func(keys []string)
}

func (b *batchNodeLoader) LoadMany(ctx context.Context, keys []string, found func(int, string, uint64, error)) error {
	b.queries.Add(1)
	rows := make([]*row, len(keys))
	b.src.mu.Lock()
	for i, k := range keys {
		if r, ok := b.src.rows[k]; ok {
			rows[i] = &r
		}
	}
	b.src.mu.Unlock()
	if b.hold != nil {
		b.hold(keys)
	}
	for i, r := range rows {
		if r != nil {
			found(i, strconv.FormatUint(r.ver, 10), r.ver, nil)
		}
	}
	return ctx.Err()
}

// TestGetManyOneRoundTripPerOwner is issue 13's goal: 100 keys with 10%
// misses spread over 4 owners cost at most one round trip per other owner
// (no single fills) and at most one source query per owner (no single
// loads). Fails when remote misses are fetched one by one (10 fills, up to
// 10 loads).
func TestGetManyOneRoundTripPerOwner(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := newSource()
		var queries atomic.Int32
		nw := gossiptest.New(91)
		ms := fillClusterWith(t, nw, gossiptest.NewFillNetwork(nw), 4, func(l *nodeLoader) Loader[string] {
			return &batchNodeLoader{nodeLoader: l, queries: &queries}
		}, src)
		// 10 cold keys, at least two per owner; 90 warm ones.
		var cold, warm []string
		per := make([]int, 4)
		for i := 0; len(cold) < 10 || len(warm) < 90; i++ {
			k := fmt.Sprintf("key%d", i)
			src.put(k, k)
			o, _ := fillOwner(t, ms, k)
			if len(cold) < 10 && per[o] < 3 && (per[o] < 2 || len(cold) >= 8) {
				per[o]++
				cold = append(cold, k)
			} else if len(warm) < 90 {
				warm = append(warm, k)
			}
		}
		for _, r := range ms[0].g.GetMany(t.Context(), warm) {
			if r.Err != nil {
				t.Fatal(r.Err)
			}
		}
		waitFor(t, time.Minute, "the warm keys cached", func() bool {
			for _, k := range warm {
				if info, _ := ms[0].g.GetInfo(t.Context(), k); info.Source != FromCache {
					return false
				}
			}
			return true
		})
		before, loads, q := ms[0].n.peerCl.Stats(), src.loads(), queries.Load()
		ownerFills := ms[0].g.Stats().FillsOwner
		keys := append(append([]string{}, warm...), cold...)
		res := ms[0].g.GetMany(t.Context(), keys)
		for i, r := range res {
			if want := "1"; r.Err != nil || r.Value != want {
				t.Errorf("%s: %+v, want %q", keys[i], r, want)
			}
		}
		after := ms[0].n.peerCl.Stats()
		trips := (after.Batches - before.Batches) + (after.Fills - before.Fills)
		if trips != 3 || after.Fills != before.Fills {
			t.Errorf("%d round trips (%d batches, %d single fills) for misses on 3 other owners; want one batch each",
				trips, after.Batches-before.Batches, after.Fills-before.Fills)
		}
		if got, want := ms[0].g.Stats().FillsOwner-ownerFills, uint64(10-per[0]); got != want {
			t.Errorf("%d keys filled by their owners, want %d (every cold key another member owns)", got, want)
		}
		if got := queries.Load() - q; got > 4 || src.loads() != loads {
			t.Errorf("%d batch queries and %d single loads for 10 misses over 4 owners; want at most 4 queries and no single load",
				got, src.loads()-loads)
		}
		t.Logf("cold keys per owner %v: %d round trips, %d source queries", per, trips, queries.Load()-q)
	})
}

// TestGetManyOwnerFillFencedByInvalidation is G8 through a batched owner
// fill: the owner's batch query reads a at v1 and is held; the writer (the
// requester itself) commits v2 and invalidates, which the requester applies
// while the owner, whose packets from it are blocked, does not hear it; the
// owner answers v1. The requester neither returns nor keeps v1 and reads a
// again alone (v2). Fails without the per-key fence on batched owner
// answers (GetMany returns "1").
func TestGetManyOwnerFillFencedByInvalidation(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := newSource()
		var queries atomic.Int32
		var held atomic.Bool
		release := make(chan struct{})
		reading := make(chan struct{})
		nw := gossiptest.New(92)
		var loaders []*batchNodeLoader
		ms := fillClusterWith(t, nw, gossiptest.NewFillNetwork(nw), 3, func(l *nodeLoader) Loader[string] {
			b := &batchNodeLoader{nodeLoader: l, queries: &queries}
			loaders = append(loaders, b)
			return b
		}, src)
		a := keyOwnedBy(t, ms, 1)
		b := keyOwnedBy(t, ms, 1, a)
		src.put(a, "a")
		src.put(b, "b")
		loaders[1].hold = func([]string) {
			if held.CompareAndSwap(false, true) {
				close(reading)
				<-release
			}
		}
		done := make(chan []Result[string])
		go func() { done <- ms[0].g.GetMany(t.Context(), []string{a, b}) }()
		<-reading // the owner has read a@1 and b@1
		nw.Block(memAddr(0), memAddr(1))
		v2 := src.put(a, "a2")
		if err := ms[0].g.Invalidate(t.Context(), a, v2); err != nil {
			t.Fatal(err)
		}
		close(release)
		res := <-done
		nw.Unblock(memAddr(0), memAddr(1))
		if res[0].Err != nil || res[0].Value != "2" {
			t.Errorf("a: %+v, want version 2 (the batch's v1 answer was fenced by the invalidation)", res[0])
		}
		if res[1].Err != nil || res[1].Value != "1" {
			t.Errorf("b: %+v, want version 1", res[1])
		}
		ms[0].g.cache.Wait()
		if e, ok := ms[0].g.cache.Get(a); ok && e.Version < v2 {
			t.Errorf("a cached at version %d after the batch, below the floor %d", e.Version, v2)
		}
	})
}
