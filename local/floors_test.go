package local

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

func TestFloors(t *testing.T) {
	tests := []struct {
		name      string
		raise     []uint64 // Raise calls before the Set
		version   uint64   // version Set
		want      SetResult
		wantFloor uint64
		wantHit   bool
	}{
		{name: "no floor", version: 1, want: Stored, wantHit: true},
		{name: "below floor", raise: []uint64{5}, version: 4, want: Stale, wantFloor: 5},
		{name: "equal to floor", raise: []uint64{5}, version: 5, want: Stored, wantFloor: 5, wantHit: true},
		{name: "above floor", raise: []uint64{5}, version: 6, want: Stored, wantFloor: 5, wantHit: true},
		{name: "floor never lowers", raise: []uint64{7, 3}, version: 5, want: Stale, wantFloor: 7},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newTestCache(t, Config{})
			for _, v := range tt.raise {
				c.Raise("k", v)
			}
			if got := set(t, c, "k", "v", tt.version); got != tt.want {
				t.Errorf("Set(version %d) = %v, want %v", tt.version, got, tt.want)
			}
			if got := c.Floor("k"); got != tt.wantFloor {
				t.Errorf("Floor = %d, want %d", got, tt.wantFloor)
			}
			if _, ok := c.Get("k"); ok != tt.wantHit {
				t.Errorf("Get hit = %v, want %v", ok, tt.wantHit)
			}
		})
	}
}

func TestRaiseReportsMove(t *testing.T) {
	c := newTestCache(t, Config{})
	for _, step := range []struct {
		v    uint64
		want bool
	}{{5, true}, {5, false}, {3, false}, {6, true}} {
		if got := c.Raise("k", step.v); got != step.want {
			t.Errorf("Raise(k, %d) = %v, want %v", step.v, got, step.want)
		}
	}
	if got := c.Floor("k"); got != 6 {
		t.Errorf("Floor = %d, want 6", got)
	}
}

func TestRaiseDropsEntryBelow(t *testing.T) {
	c := newTestCache(t, Config{})
	set(t, c, "k", "v3", 3)
	c.Raise("k", 3) // equal: kept
	if e, ok := c.Get("k"); !ok || e.Version != 3 {
		t.Fatalf("Get after Raise(3) = %v, %v; want version 3", e, ok)
	}
	c.Raise("k", 4)
	c.Wait()
	if _, ok := c.rc.Get(c.hash("k")); ok {
		t.Error("entry below the floor still in ristretto after Raise")
	}
	if _, ok := c.Get("k"); ok {
		t.Error("Get returned an entry below the floor")
	}
}

// A Set that passed its floor check before a Raise, landing in ristretto after
// it (as a buffered ristretto Set can), must not be served.
func TestLateSetAfterRaiseRefused(t *testing.T) {
	c := newTestCache(t, Config{})
	late := prepareLate(c, "k", 1)
	c.Raise("k", 2)
	late.land()
	if e, ok := c.Get("k"); ok {
		t.Fatalf("Get = version %d, want a miss (floor 2)", e.Version)
	}
	if got := c.Stats().StaleRejected; got != 1 {
		t.Errorf("StaleRejected = %d, want 1", got)
	}
	if late.e.epoch != deadEpoch {
		t.Errorf("refused entry epoch = %d, want it marked dead", late.e.epoch)
	}
	// A late Set at or above the floor is fine, and goes back to the fast path.
	late = prepareLate(c, "k", 2)
	c.Raise("k", 2)
	late.land()
	if _, ok := c.Get("k"); !ok {
		t.Fatal("Get missed an entry equal to the floor")
	}
	if e := late.e; e.epoch != c.floors.epochs[e.bucket].Load() {
		t.Errorf("entry epoch %d not refreshed to %d after validation", e.epoch, c.floors.epochs[e.bucket].Load())
	}
}

// Concurrent Sets and Raises: after Wait, Get never returns a version below
// the key's floor.
func TestConcurrentSetRaiseNeverBelowFloor(t *testing.T) {
	c := newTestCache(t, Config{})
	const keys, rounds = 8, 300
	for round := range rounds {
		var wg sync.WaitGroup
		for k := range keys {
			key := fmt.Sprintf("k%d", k)
			base := uint64(round * 10)
			wg.Go(func() {
				for range 10 {
					c.Set(key, Entry[string]{Version: base + rand.Uint64N(10)}, 1, time.Hour, nil)
				}
			})
			wg.Go(func() { c.Raise(key, base+5) })
			wg.Go(func() { c.Get(key) })
		}
		wg.Wait()
		c.Wait()
		for k := range keys {
			key := fmt.Sprintf("k%d", k)
			if e, ok := c.Get(key); ok && e.Version < c.Floor(key) {
				t.Fatalf("round %d: Get(%s) = version %d below floor %d", round, key, e.Version, c.Floor(key))
			}
		}
	}
}

func TestFloorRetention(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newTestCache(t, Config{FloorRetention: time.Minute})
		c.Raise("k", 5)
		time.Sleep(59 * time.Second)
		if got := c.Floor("k"); got != 5 {
			t.Fatalf("Floor before retention = %d, want 5", got)
		}
		c.Raise("k", 5) // heard again: kept another minute
		time.Sleep(59 * time.Second)
		if got := c.Floor("k"); got != 5 {
			t.Fatalf("Floor after re-raise = %d, want 5", got)
		}
		time.Sleep(2 * time.Second)
		if got := c.Floor("k"); got != 0 {
			t.Fatalf("Floor after retention = %d, want 0", got)
		}
		c.Raise("other", 1) // sweeps the shard it falls in
		if got := set(t, c, "k", "old", 4); got != Stored {
			t.Errorf("Set(version 4) after retention = %v, want Stored", got)
		}
		if got := c.Stats().Floors; got > 2 {
			t.Errorf("Floors = %d, want <= 2", got)
		}
	})
}

// A late Set refused while its floor lived stays refused once the floor is
// forgotten: forgetting a floor must not revive what it fenced off.
func TestForgottenFloorDoesNotRevive(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newTestCache(t, Config{FloorRetention: time.Minute})
		late := prepareLate(c, "k", 1)
		c.Raise("k", 2)
		late.land()
		time.Sleep(2 * time.Minute)
		if got := c.Floor("k"); got != 0 {
			t.Fatalf("Floor = %d, want 0 (forgotten)", got)
		}
		if e, ok := c.Get("k"); ok {
			t.Fatalf("Get = version %d after its floor was forgotten, want a miss", e.Version)
		}
		c.Raise("k2", 1) // sweep path, then check again
		if _, ok := c.Get("k"); ok {
			t.Fatal("Get hit after sweep")
		}
		// A fresh Set is served again.
		if got := set(t, c, "k", "new", 1); got != Stored {
			t.Fatalf("Set = %v, want Stored", got)
		}
		if _, ok := c.Get("k"); !ok {
			t.Fatal("fresh entry refused")
		}
	})
}

func TestMaxFloorsFolding(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newTestCache(t, Config{MaxFloors: numFloorShards, FloorRetention: time.Minute}) // one exact floor per shard
		const n = 1000
		for i := range n {
			c.Raise(fmt.Sprintf("k%d", i), 10)
		}
		st := c.Stats()
		if st.Floors > numFloorShards || st.FloorsFolded == 0 || st.Floors+int(st.FloorsFolded) != n {
			t.Fatalf("Floors = %d, FloorsFolded = %d; want <= %d and sum %d", st.Floors, st.FloorsFolded, numFloorShards, n)
		}
		fenced := 0
		for i := range n {
			key := fmt.Sprintf("k%d", i)
			if got := c.Floor(key); got != 10 {
				t.Fatalf("Floor(%s) = %d, want 10 (exact or coarse)", key, got)
			}
			switch r := c.Set(key, Entry[string]{Version: 9}, 1, 0, nil); r {
			case Fenced:
				fenced++
			case Stale:
			default:
				t.Fatalf("Set(%s, 9) = %v, want Stale or Fenced", key, r)
			}
		}
		if fenced == 0 {
			t.Error("no Set was Fenced")
		}
		// A late entry below a coarse floor is refused by Get.
		var key string
		for i := range n {
			key = fmt.Sprintf("k%d", i)
			if c.Set(key, Entry[string]{Version: 9}, 1, 0, nil) == Fenced {
				break
			}
		}
		c.Raise("elsewhere", 1)
		late := prepareLate(c, key, 9)
		late.e.epoch = 0
		late.land()
		if _, ok := c.Get(key); ok {
			t.Errorf("Get(%s) served an entry below its coarse floor", key)
		}
		// Coarse floors expire after retention too.
		time.Sleep(2 * time.Minute)
		if got := c.Floor(key); got != 0 {
			t.Errorf("Floor(%s) after retention = %d, want 0", key, got)
		}
	})
}
