package node

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"

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
