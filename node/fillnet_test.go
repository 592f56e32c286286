package node

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/nearcache/nearcache/gossip/gossiptest"
)

// These tests run owner fills (G6) inside a synctest bubble: gossip on
// gossiptest's in-memory transports and fills on its FillNetwork, under the
// same partitions. Every one passes
//
//	go test -race -count=50 -run TestFillNet ./node/
//
// while `timeout 300 sh -c 'yes >/dev/null & yes >/dev/null & wait'` runs.

// fillOwnerTimeout is below the peer client's DialTimeout (1s), so a
// black-holed dial always ends by the owner timeout, never by its own.
const fillOwnerTimeout = 300 * time.Millisecond

// fillMember is a member of a cluster whose fills travel the FillNetwork.
type fillMember struct {
	n      *Node
	g      *Group[string]
	loader *nodeLoader
	tr     *gossiptest.Transport
}

// fillCluster starts size members on nw with fills on fn, each with its own
// loader over src; call it inside a synctest bubble. It returns once every
// member trusts its cache and sees all.
func fillCluster(t *testing.T, nw *gossiptest.Network, fn *gossiptest.FillNetwork, size int, src *source) []*fillMember {
	t.Helper()
	return fillClusterWith(t, nw, fn, size, func(l *nodeLoader) Loader[string] { return l }, src)
}

// fillClusterWith is fillCluster with each member's loader made by wrap
// from its nodeLoader (a BatchLoader, say).
func fillClusterWith(t *testing.T, nw *gossiptest.Network, fn *gossiptest.FillNetwork, size int, wrap func(*nodeLoader) Loader[string], src *source) []*fillMember {
	t.Helper()
	t.Cleanup(func() { time.Sleep(30 * time.Second) }) // see memCluster
	ms := make([]*fillMember, size)
	for i := range size {
		tr, err := nw.Transport(memAddr(i))
		if err != nil {
			t.Fatal(err)
		}
		ln, err := fn.Listen(memAddr(i)) // the fill port shares the gossip address
		if err != nil {
			t.Fatal(err)
		}
		cfg := DefaultLocalConfig(fmt.Sprintf("n%d", i))
		cfg.Transport = tr
		cfg.FillListener = ln
		cfg.FillDial = fn.Dialer(memAddr(i))
		cfg.OwnerTimeout = fillOwnerTimeout
		if i > 0 {
			cfg.Join = []string{memAddr(0)}
		}
		n, err := Start(context.Background(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { n.Close(context.Background()) })
		l := &nodeLoader{src: src}
		g, err := NewGroup(n, "rows", GroupConfig[string]{Loader: wrap(l), SampleEvery: -1})
		if err != nil {
			t.Fatal(err)
		}
		ms[i] = &fillMember{n: n, g: g, loader: l, tr: tr}
	}
	waitFor(t, time.Minute, "every member trusted and seeing all", func() bool {
		for _, m := range ms {
			if !m.n.Trusted() || len(m.n.Members()) != size {
				return false
			}
		}
		return true
	})
	return ms
}

// fillOwner returns the index of the member owning key of "rows", and of
// another member, to ask it.
func fillOwner(t *testing.T, ms []*fillMember, key string) (owner, requester int) {
	t.Helper()
	name := ms[0].n.owners.Load().ring.Owner("rows\x00" + key)
	for i, m := range ms {
		if m.n.Name() == name {
			return i, (i + 1) % len(ms)
		}
	}
	t.Fatalf("owner %q of %q is not a member", name, key)
	return -1, -1
}

// keyOwnedBy returns a key of "rows" other than not that member o owns.
func keyOwnedBy(t *testing.T, ms []*fillMember, o int, not ...string) string {
	t.Helper()
next:
	for i := range 1000 {
		k := fmt.Sprintf("k%d", i)
		for _, n := range not {
			if k == n {
				continue next
			}
		}
		if ow, _ := fillOwner(t, ms, k); ow == o {
			return k
		}
	}
	t.Fatalf("no key owned by n%d", o)
	return ""
}

// TestFillNetSingleFill is G6 on the fake network: concurrent misses of one
// cold key on every node make one loader call cluster-wide, and every other
// node gets the value from the owner. Fails when fills do not travel the
// FillNetwork (every requester falls back: 5 loads) or the owner does not
// coalesce.
//
// Scheduling-dependent; green under load with:
//
//	go test -race -count=50 -run TestFillNetSingleFill ./node/  # beside: yes >/dev/null & yes >/dev/null &
func TestFillNetSingleFill(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := newSource()
		src.put("hot", "")
		nw := gossiptest.New(41)
		ms := fillCluster(t, nw, gossiptest.NewFillNetwork(nw), 5, src)
		gt := newGate()
		for _, m := range ms {
			m.loader.setHold(gt.hold)
		}
		const readers = 16
		var wg sync.WaitGroup
		for _, m := range ms {
			for range readers {
				wg.Go(func() {
					if _, err := m.g.Get(context.Background(), "hot"); err != nil {
						t.Error(err)
					}
				})
			}
		}
		<-gt.started
		synctest.Wait() // every reader is waiting: on this node's flight, or the owner's
		// On each node one reader's flight runs and the others join it; each
		// non-owner's flight asks the owner, whose answer joins its own flight.
		var coalesced, served uint64
		for _, m := range ms {
			s := m.g.stats()
			coalesced += s.Coalesced
			served += s.FillsServed
		}
		if want := uint64(len(ms)*(readers-1) + len(ms) - 1); coalesced != want || served != uint64(len(ms)-1) {
			t.Errorf("while the owner loads: %d joined a flight, the owner served %d; want %d and %d", coalesced, served, want, len(ms)-1)
		}
		close(gt.release)
		wg.Wait()

		var local, owner, fallback uint64
		for _, m := range ms {
			s := m.g.stats()
			local += s.FillsLocal
			owner += s.FillsOwner
			fallback += s.FillsFallback
		}
		if n := src.loads(); n != 1 || local != 1 {
			t.Errorf("loader called %d times (local fills %d) for one cold key across the cluster, want 1 (G6)", n, local)
		}
		if owner != uint64(len(ms)-1) || fallback != 0 {
			t.Errorf("owner fills %d, fallbacks %d; want %d and 0", owner, fallback, len(ms)-1)
		}
	})
}

// TestFillNetOwnerStalls: an owner whose loader blocks costs its requester
// exactly OwnerTimeout, then a local load. Fails if the requester waited on
// the owner longer (or did not ask it).
//
// Scheduling-dependent; green under load with:
//
//	go test -race -count=50 -run TestFillNetOwnerStalls ./node/  # beside: yes >/dev/null & yes >/dev/null &
func TestFillNetOwnerStalls(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := newSource()
		src.put("k", "")
		nw := gossiptest.New(42)
		ms := fillCluster(t, nw, gossiptest.NewFillNetwork(nw), 3, src)
		o, r := fillOwner(t, ms, "k")
		gt := newGate()
		ms[o].loader.setHold(gt.hold)
		defer close(gt.release)

		start := time.Now()
		if _, err := ms[r].g.Get(context.Background(), "k"); err != nil {
			t.Fatalf("Get with a stalled owner: %v", err)
		}
		if took := time.Since(start); took != fillOwnerTimeout {
			t.Errorf("Get took %v with a stalled owner, want OwnerTimeout (%v) then an instant local load", took, fillOwnerTimeout)
		}
		if s := ms[r].g.stats(); s.FillsFallback != 1 || s.OwnerErrors.Timeout != 1 || s.FillsLocal != 1 {
			t.Errorf("fallbacks %d, owner timeouts %d, local fills %d; want 1, 1, 1", s.FillsFallback, s.OwnerErrors.Timeout, s.FillsLocal)
		}
		if s := ms[o].g.stats(); s.FillsServed != 1 {
			t.Errorf("the owner served %d fills, want 1 (the request reached it)", s.FillsServed)
		}
	})
}

// TestFillNetOwnerDies: the owner dies while loading (its fill listener,
// connections and gossip transport vanish). The requester falls back at once
// instead of waiting for OwnerTimeout, and once the cluster has noticed the
// death, the ring no longer sends it there.
//
// Scheduling-dependent; green under load with:
//
//	go test -race -count=50 -run TestFillNetOwnerDies ./node/  # beside: yes >/dev/null & yes >/dev/null &
func TestFillNetOwnerDies(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := newSource()
		src.put("k", "")
		nw := gossiptest.New(43)
		ms := fillCluster(t, nw, gossiptest.NewFillNetwork(nw), 3, src)
		o, r := fillOwner(t, ms, "k")
		gt := newGate()
		ms[o].loader.setHold(gt.hold)
		defer close(gt.release)

		got := make(chan error, 1)
		start := time.Now()
		go func() { _, err := ms[r].g.Get(context.Background(), "k"); got <- err }()
		<-gt.started
		k2 := keyOwnedBy(t, ms, o, "k") // by the ring before the death: the new one gives it to a live node
		ms[o].n.peerSrv.Close()         // kill -9: the kernel resets its connections...
		ms[o].tr.Shutdown()             // ...and its gossip goes silent
		if err := <-got; err != nil {
			t.Fatalf("Get with the owner gone: %v", err)
		}
		if took := time.Since(start); took >= fillOwnerTimeout {
			t.Errorf("fallback took %v after the owner died, want it at once (a reset, not a timeout)", took)
		}
		if s := ms[r].g.stats(); s.FillsFallback != 1 || s.OwnerErrors.Transport != 1 {
			t.Errorf("fallbacks %d, transport errors %d; want 1 and 1", s.FillsFallback, s.OwnerErrors.Transport)
		}

		waitFor(t, time.Minute, "the dead owner gone from the requester's members", func() bool { return len(ms[r].n.Members()) == 2 })
		before := src.loads()
		src.put(k2, "")
		start = time.Now()
		if _, err := ms[r].g.Get(context.Background(), k2); err != nil {
			t.Fatal(err)
		}
		if took := time.Since(start); took != 0 {
			t.Errorf("a miss after the owner's death took %v: it still asked the dead owner", took)
		}
		if src.loads() != before+1 {
			t.Errorf("%d loads for one miss after the death, want 1", src.loads()-before)
		}
	})
}

// TestFillNetPartitionCutsFills: a partition cuts fills as well as gossip. A
// node cut off from the cluster raised a key's floor locally (its writer's
// invalidation could not spread); its misses must not reach the owner, on a
// pooled connection or a new dial, so the owner's floor stays where the
// cluster put it. Fails when the fill channel ignores partitions (the owner
// serves the fills and raises its floor). Also: once the cut-off node drops
// the owner from its members, its idle connections to it are closed.
//
// Scheduling-dependent; green under load with:
//
//	go test -race -count=50 -run TestFillNetPartitionCutsFills ./node/  # beside: yes >/dev/null & yes >/dev/null &
func TestFillNetPartitionCutsFills(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := newSource()
		nw := gossiptest.New(44)
		ms := fillCluster(t, nw, gossiptest.NewFillNetwork(nw), 3, src)
		o, r := fillOwner(t, ms, "warm")
		src.put("warm", "")
		if _, err := ms[r].g.Get(context.Background(), "warm"); err != nil {
			t.Fatal(err)
		}
		ownerAddr := ms[r].n.owners.Load().addrs[ms[o].n.Name()]
		if s := ms[r].g.stats(); s.FillsOwner != 1 || ms[r].n.peerCl.Idle(ownerAddr) != 1 {
			t.Fatalf("warm-up: %d owner fills, %d idle connections to the owner; want 1 and 1", s.FillsOwner, ms[r].n.peerCl.Idle(ownerAddr))
		}
		served := ms[o].g.stats().FillsServed
		k1 := keyOwnedBy(t, ms, o, "warm")
		k2 := keyOwnedBy(t, ms, o, "warm", k1)
		k3 := keyOwnedBy(t, ms, o, "warm", k1, k2)

		nw.Isolate(memAddr(r))
		for _, c := range []struct{ how, k string }{{"pooled connection", k1}, {"new dial", k2}} {
			how, k := c.how, c.k
			ver := src.put(k, "v")
			if err := ms[r].g.Invalidate(context.Background(), k, ver); err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			if _, err := ms[r].g.Get(context.Background(), k); err != nil {
				t.Fatalf("%s: Get on the cut-off node: %v", how, err)
			}
			if took := time.Since(start); took != fillOwnerTimeout {
				t.Errorf("%s: Get took %v, want OwnerTimeout (%v): the owner is black-holed", how, took, fillOwnerTimeout)
			}
			if s := ms[o].g.stats(); s.FillsServed != served {
				t.Errorf("%s: the owner served %d fills across the partition", how, s.FillsServed-served)
			}
			if f := ms[o].g.cache.Floor(k); f != 0 {
				t.Errorf("%s: the owner's floor for %s is %d, raised across the partition", how, k, f)
			}
		}
		if s := ms[r].g.stats(); s.FillsFallback != 2 || s.OwnerErrors.Timeout != 2 {
			t.Errorf("fallbacks %d, owner timeouts %d; want 2 and 2", s.FillsFallback, s.OwnerErrors.Timeout)
		}

		// The warm-up's connection was reused and dropped: pool a new one,
		// which the partition cuts, and see it closed when the owner departs.
		nw.Heal()
		k := k3
		src.put(k, "")
		waitFor(t, time.Minute, "a fill through the owner after the heal", func() bool {
			before := ms[r].g.stats().FillsOwner
			ms[r].g.cache.Delete(k)
			ms[r].g.Get(context.Background(), k)
			return ms[r].g.stats().FillsOwner > before
		})
		if ms[r].n.peerCl.Idle(ownerAddr) != 1 {
			t.Fatalf("%d idle connections to the owner after a fill, want 1", ms[r].n.peerCl.Idle(ownerAddr))
		}
		nw.Isolate(memAddr(o))
		waitFor(t, time.Minute, "the cut-off owner gone from the requester's members", func() bool { return len(ms[r].n.Members()) == 2 })
		synctest.Wait() // the membership callbacks have run
		if n := ms[r].n.peerCl.Idle(ownerAddr); n != 0 {
			t.Errorf("%d idle connections to an owner that departed, want 0", n)
		}
	})
}
