package node

import (
	"context"
	"errors"
	"sync"
	"testing"
	"testing/synctest"

	"github.com/nearcache/nearcache/gossip/gossiptest"
)

// TestInvalidateManyIsOnePublish: a batch invalidates every key here and on
// every member, in one publish (one acknowledgement wait), and a bad entry
// fails the call before anything is applied.
func TestInvalidateManyIsOnePublish(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := newSource()
		nw := gossiptest.New(29)
		ms := memCluster(t, nw, 3, src, nil)
		keys := []string{"a", "b", "c", "d"}
		batch := make([]KeyVersion, len(keys))
		for i, k := range keys {
			src.put(k, "v1")
			mustGet(t, ms[1].g, k)
			batch[i] = KeyVersion{Key: k, Version: src.put(k, "v2")}
		}
		before := ms[0].n.cluster.Stats().Published
		var waited []string
		if err := ms[0].g.InvalidateMany(t.Context(), batch, AckAll(), AckedBy(&waited)); err != nil {
			t.Fatal(err)
		}
		if got := ms[0].n.cluster.Stats().Published - before; got != uint64(len(keys)) {
			t.Errorf("published %d invalidations, want %d", got, len(keys))
		}
		if len(waited) != 2 {
			t.Errorf("AckAll waited for %v, want both peers", waited)
		}
		for _, m := range ms {
			for _, kv := range batch {
				if f := m.g.cache.Floor(kv.Key); f != kv.Version {
					t.Errorf("%s: floor of %s = %d after the batch's AckAll returned, want %d", m.n.Name(), kv.Key, f, kv.Version)
				}
			}
		}
		if got := mustGet(t, ms[1].g, "c"); got != "v2" {
			t.Errorf("n1 read %q after the batch, want v2", got)
		}
		bad := []KeyVersion{{Key: "e", Version: 9}, {Key: "", Version: 3}}
		if err := ms[0].g.InvalidateMany(t.Context(), bad); err == nil {
			t.Fatal("InvalidateMany with an empty key succeeded")
		}
		if f := ms[0].g.cache.Floor("e"); f != 0 {
			t.Errorf("a rejected batch applied its first entry: floor of e = %d", f)
		}
		if err := ms[0].g.InvalidateMany(t.Context(), []KeyVersion{{Key: "e"}}); err == nil {
			t.Error("InvalidateMany with version 0 on a SourceVersions group succeeded")
		}
	})
}

// TestInvalidateGroupFencesFillsInFlight: InvalidateGroup drops every value
// on every member, and a fill in flight on a member when it lands answers
// nobody with its (older) value: a reader that joins it afterwards gets the
// source's value after the change. Catches: the purge epoch not fencing
// results (admits ignoring it).
func TestInvalidateGroupFencesFillsInFlight(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := newSource()
		src.put("a", "v1")
		src.put("b", "v1")
		nw := gossiptest.New(31)
		ms := memCluster(t, nw, 3, src, nil)
		mustGet(t, ms[1].g, "a")

		release := make(chan struct{})
		var once sync.Once
		src.setHold(func(ctx context.Context, key string) error {
			if key == "b" {
				first := false
				once.Do(func() { first = true })
				if first {
					<-release // a fill of b that read v1 is slow to return it
				}
			}
			return nil
		})
		var wg sync.WaitGroup
		var early string
		wg.Go(func() { early = mustGet(t, ms[1].g, "b") })
		synctest.Wait()
		src.put("a", "v2")
		src.put("b", "v2") // a bulk change whose keys the writer does not name
		if err := ms[0].g.InvalidateGroup(t.Context(), AckAll()); err != nil {
			t.Fatal(err)
		}
		if got := mustGet(t, ms[1].g, "a"); got != "v2" {
			t.Errorf("n1 read a = %q after InvalidateGroup's AckAll returned, want v2", got)
		}
		var late string
		wg.Go(func() { late = mustGet(t, ms[1].g, "b") })
		synctest.Wait()
		close(release)
		wg.Wait()
		if late != "v2" {
			t.Errorf("a read that began after InvalidateGroup got b = %q from a fill in flight before it", late)
		}
		_ = early // it began before the change: either value is correct
		if st := ms[1].g.stats(); st.Purges == 0 {
			t.Error("n1 counted no purge")
		}
		ms[2].n.Close(context.Background())
		if err := ms[2].g.InvalidateGroup(t.Context()); !errors.Is(err, ErrClosed) {
			t.Errorf("InvalidateGroup on a closed node = %v, want ErrClosed", err)
		}
	})
}

// TestApplyChanges: a feed's batch (a key, a tag, and a whole group in
// another) reaches every member before ApplyChanges returns; a bad change
// fails the batch before anything is applied.
func TestApplyChanges(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := newSource()
		nw := gossiptest.New(37)
		ms := memCluster(t, nw, 3, src, nil)
		other := make([]*Group[string], len(ms))
		for i, m := range ms {
			g, err := NewGroup(m.n, "other", GroupConfig[string]{Loader: src})
			if err != nil {
				t.Fatal(err)
			}
			other[i] = g
		}
		src.put("x", "v1")
		mustGet(t, other[2], "x")
		ver := src.put("k", "v1")
		err := ms[0].n.ApplyChanges(t.Context(), []Change{
			{Group: "rows", Kind: ChangeKey, Key: "k", Version: ver},
			{Group: "rows", Kind: ChangeTag, Key: "user:1"},
			{Group: "other", Kind: ChangeGroup},
		})
		if err != nil {
			t.Fatal(err)
		}
		for i, m := range ms {
			if f := m.g.cache.Floor("k"); f != ver {
				t.Errorf("%s: floor of k = %d, want %d", m.n.Name(), f, ver)
			}
			if m.g.cache.TagVersion("user:1") == 0 {
				t.Errorf("%s: tag user:1 not bumped", m.n.Name())
			}
			if other[i].stats().Purges == 0 {
				t.Errorf("%s: group other not purged", m.n.Name())
			}
		}
		bad := [][]Change{
			{{Group: "rows", Kind: ChangeKey, Key: "k2", Version: 5}, {Group: "nope", Kind: ChangeKey, Key: "k", Version: 1}},
			{{Group: "rows", Kind: ChangeKey, Key: "k2", Version: 5}, {Group: "rows", Kind: ChangeKind(9), Key: "k"}},
			{{Group: "rows", Kind: ChangeKey, Key: "k2", Version: 5}, {Group: "rows", Kind: ChangeKey, Key: "k"}},
			{{Group: "rows", Kind: ChangeKey, Key: "k2", Version: 5}, {Group: "rows", Kind: ChangeGroup, Key: "k"}},
		}
		for i, b := range bad {
			if err := ms[0].n.ApplyChanges(t.Context(), b); err == nil {
				t.Errorf("bad batch %d applied", i)
			}
		}
		if f := ms[0].g.cache.Floor("k2"); f != 0 {
			t.Errorf("a rejected batch applied its first change: floor of k2 = %d", f)
		}
		if err := ms[0].n.ApplyChanges(t.Context(), bad[0][1:]); !errors.Is(err, ErrUnknownGroup) {
			t.Errorf("unknown group: %v, want ErrUnknownGroup", err)
		}
	})
}
