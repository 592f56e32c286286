package node

import (
	"context"
	"errors"
	"math"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/nearcache/nearcache/gossip/gossiptest"
)

// TestPoisonedFloorCostsOneLoadPerBackoff: one invalidation with a version
// above the row's (a wrong unit, a forged request) must not turn every read
// of the key into a stampede on the source. Readers on every node of a
// cluster with owner fills read the key for a minute: each read fails with a
// StaleError naming the floor and the source's version, the cluster loads
// the key at most once per back-off (plus the first reads' retries), and the
// owner's floor is not renewed by requests. Catches: the retry loop per read
// (about 52 loads per read before), owners raising their floor from a fill
// request, requesters loading locally when the owner says "below floor".
func TestPoisonedFloorCostsOneLoadPerBackoff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := newSource()
		src.put("k", "v1")
		nw := gossiptest.New(43)
		ms := fillCluster(t, nw, gossiptest.NewFillNetwork(nw), 3, src)
		owner, _ := fillOwner(t, ms, "k")
		const poison = 1_000_000_000
		writer := ms[(owner+1)%3]
		if err := writer.g.Invalidate(t.Context(), "k", poison, AckAll()); err != nil {
			t.Fatal(err)
		}
		before := src.loads()
		const run = time.Minute
		ctx, cancel := context.WithTimeout(t.Context(), run)
		defer cancel()
		var reads, slow atomic.Int64
		var wrong sync.Map
		var wg sync.WaitGroup
		for _, m := range ms {
			for range 4 {
				wg.Go(func() {
					for ctx.Err() == nil {
						start := time.Now()
						_, err := m.g.Get(context.WithoutCancel(ctx), "k")
						var se *StaleError
						if !errors.As(err, &se) || se.Floor != poison || se.Version != 1 {
							wrong.Store(m.n.Name(), err)
						}
						if time.Since(start) > time.Second {
							slow.Add(1)
						}
						reads.Add(1)
						time.Sleep(10 * time.Millisecond)
					}
				})
			}
		}
		wg.Wait()
		loads := src.loads() - before
		t.Logf("%d reads of a poisoned key on 3 nodes over %v: %d loads, %d reads slower than 1s", reads.Load(), run, loads, slow.Load())
		for _, m := range ms {
			st := m.g.stats()
			t.Logf("%s: loads %d owner fills %d fallback %d fast fails %d stale rejected %d owner errs %+v", m.n.Name(), st.Loads, st.FillsOwner, st.FillsFallback, st.StaleFastFails, st.StaleRejected, st.OwnerErrors)
		}
		wrong.Range(func(k, v any) bool {
			t.Errorf("%v: a read returned %v, want a StaleError naming floor %d and source version 1", k, v, poison)
			return true
		})
		// The first read's retries give a lagging source LoadTimeout to catch
		// up (about 23 loads in the local profile); then one load per
		// back-off, by the owner. 60 a minute is the goal issue 12 set.
		if bound := 60; loads > bound {
			t.Errorf("%d loads of one poisoned key in %v, want at most %d (one per back-off, cluster-wide)", loads, run, bound)
		}
		if f := ms[owner].g.cache.ExactFloor("k"); f != poison {
			t.Errorf("owner's floor = %d, want %d (from the invalidation)", f, poison)
		}
		if st := ms[owner].g.stats(); st.StaleFastFails == 0 {
			t.Error("no fast fails counted on the owner")
		}
	})
}

// TestOwnerDoesNotTakeTheRequestersFloor: a fill request's floor fences the
// answer only; the owner's own floor moves only by invalidations.
func TestOwnerDoesNotTakeTheRequestersFloor(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := newSource()
		src.put("k", "v1")
		nw := gossiptest.New(47)
		ms := fillCluster(t, nw, gossiptest.NewFillNetwork(nw), 3, src)
		owner, _ := fillOwner(t, ms, "k")
		resp := ms[owner].g.serveFill(t.Context(), "k", 500)
		if resp.Version != 1 {
			t.Errorf("answer version = %d, want the source's 1", resp.Version)
		}
		if f := ms[owner].g.cache.ExactFloor("k"); f != 0 {
			t.Errorf("owner's floor = %d after a fill request with floor 500, want 0", f)
		}
		if got := mustGet(t, ms[owner].g, "k"); got != "1" {
			t.Errorf("owner's own read = %q, want 1", got)
		}
	})
}

// TestVersionsOutOfRangeRefused: no entry point takes a version above
// MaxVersion (2^63-1), and the HLC saturates there instead of wrapping.
func TestVersionsOutOfRangeRefused(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := newSource()
		src.put("k", "v1")
		nw := gossiptest.New(53)
		ms := memCluster(t, nw, 2, src, nil)
		g := ms[0].g
		if err := g.Invalidate(t.Context(), "k", MaxVersion+1); err == nil {
			t.Error("Invalidate above MaxVersion succeeded")
		}
		if err := g.Set(t.Context(), "k", "x", math.MaxUint64); err == nil {
			t.Error("Set above MaxVersion succeeded")
		}
		if err := g.InvalidateMany(t.Context(), []KeyVersion{{Key: "k", Version: MaxVersion + 1}}); err == nil {
			t.Error("InvalidateMany above MaxVersion succeeded")
		}
		if f := g.cache.ExactFloor("k"); f != 0 {
			t.Errorf("floor = %d after refused writes", f)
		}
		g.apply(kindKey, "k", math.MaxUint64) // as if from the network
		if f := g.cache.ExactFloor("k"); f != 0 {
			t.Errorf("floor = %d after an invalidation from the network with version 2^64-1", f)
		}
		if st := g.stats(); st.VersionsRefused != 1 {
			t.Errorf("VersionsRefused = %d, want 1", st.VersionsRefused)
		}
		if err := g.Invalidate(t.Context(), "k", MaxVersion); err != nil {
			t.Errorf("Invalidate at MaxVersion: %v", err)
		}

		var c hlc
		c.last.Store(MaxVersion - 1)
		if a, b := c.now(), c.now(); a != MaxVersion || b != MaxVersion {
			t.Errorf("HLC at its end: %d, %d; want MaxVersion twice (saturate, never wrap)", a, b)
		}
		var d hlc
		d.observe(math.MaxUint64)
		if d.last.Load() != MaxVersion {
			t.Errorf("HLC observed 2^64-1: %d, want MaxVersion", d.last.Load())
		}
	})
}

// TestClockStampFromTheFutureRefused: in a ClockVersions group an
// invalidation stamped far beyond this node's wall clock plus MaxClockSkew is
// refused (it would fence the key until that time).
func TestClockStampFromTheFutureRefused(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := gossiptest.New(59)
		ms := memCluster(t, nw, 2, newSource(), nil)
		g, err := NewGroup(ms[0].n, "clock", GroupConfig[string]{Loader: newSource(), Versioning: ClockVersions})
		if err != nil {
			t.Fatal(err)
		}
		far := uint64(time.Now().Add(time.Hour).UnixNano())
		g.apply(kindKey, "k", far)
		if f := g.cache.ExactFloor("k"); f != 0 {
			t.Errorf("floor = %d after a stamp an hour ahead", f)
		}
		near := uint64(time.Now().UnixNano())
		g.apply(kindKey, "k", near)
		if f := g.cache.ExactFloor("k"); f != near {
			t.Errorf("floor = %d after a current stamp, want %d", f, near)
		}
	})
}
