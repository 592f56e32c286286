package local

import (
	"testing"
	"testing/synctest"
	"time"
)

func TestSetGet(t *testing.T) {
	c := newTestCache(t, Config{})
	if _, ok := c.Get("k"); ok {
		t.Fatal("Get on empty cache hit")
	}
	if got := c.Set("k", Entry[string]{Value: "v", Version: 3, LoadTime: time.Millisecond}, 10, 0, nil); got != Stored {
		t.Fatalf("Set = %v, want Stored", got)
	}
	c.Wait()
	e, ok := c.Get("k")
	if !ok || e.Value != "v" || e.Version != 3 || e.LoadTime != time.Millisecond || e.StoredAt == 0 || e.ExpireAt != 0 {
		t.Fatalf("Get = %+v, %v", e, ok)
	}
	c.Delete("k")
	c.Wait()
	if _, ok := c.Get("k"); ok {
		t.Error("Get hit after Delete")
	}
	st := c.Stats()
	if st.Hits != 1 || st.Misses != 2 || st.Sets[Stored] != 1 {
		t.Errorf("Stats = %+v; want 1 hit, 2 misses, 1 stored", st)
	}
}

func TestSuperseded(t *testing.T) {
	c := newTestCache(t, Config{})
	set(t, c, "k", "v5", 5)
	if got := set(t, c, "k", "v4", 4); got != Superseded {
		t.Errorf("Set(4) over 5 = %v, want Superseded", got)
	}
	if got := set(t, c, "k", "v5b", 5); got != Stored {
		t.Errorf("Set(5) over 5 = %v, want Stored", got)
	}
	// Two Sets that both passed the check: the lower, landing last, must not
	// replace the higher (ShouldUpdate).
	late := prepareLate(c, "k", 4)
	late.land()
	if e, ok := c.Get("k"); !ok || e.Version != 5 {
		t.Errorf("Get after a late lower Set = %+v, %v; want version 5", e, ok)
	}
	if got := set(t, c, "k", "v6", 6); got != Stored {
		t.Errorf("Set(6) = %v, want Stored", got)
	}
	if e, ok := c.Get("k"); !ok || e.Version != 6 {
		t.Errorf("Get = %+v, %v; want version 6", e, ok)
	}
}

// Purge drops entries, and Sets that were buffered (or in flight) when it ran
// never come back.
func TestPurgeGeneration(t *testing.T) {
	c := newTestCache(t, Config{})
	set(t, c, "a", "v", 1)
	late := prepareLate(c, "b", 1)
	c.Purge()
	late.land()
	for _, k := range []string{"a", "b"} {
		if _, ok := c.Get(k); ok {
			t.Errorf("Get(%s) hit after Purge", k)
		}
	}
	c.Raise("f", 3)
	c.BumpTag("t")
	c.Purge()
	if c.Floor("f") != 3 || c.TagVersion("t") != 1 {
		t.Error("Purge dropped floors or tags")
	}
	if got := set(t, c, "a", "v", 2); got != Stored {
		t.Fatalf("Set after Purge = %v", got)
	}
	if _, ok := c.Get("a"); !ok {
		t.Error("Get missed an entry Set after Purge")
	}
	if got := c.Stats().Purges; got != 2 {
		t.Errorf("Purges = %d, want 2", got)
	}
}

func TestTTLJitter(t *testing.T) {
	tests := []struct {
		name   string
		jitter float64
		ttl    time.Duration
		minTTL time.Duration
	}{
		{name: "default jitter", jitter: 0, ttl: time.Minute, minTTL: 54 * time.Second},
		{name: "half", jitter: 0.5, ttl: time.Minute, minTTL: 30 * time.Second},
		{name: "none", jitter: -1, ttl: time.Minute, minTTL: time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				c := newTestCache(t, Config{Jitter: tt.jitter})
				seen := map[int64]bool{} // distinct jittered TTLs
				for range 20 {
					start := c.Now()
					if got := c.Set("k", Entry[string]{Version: 1}, 1, tt.ttl, nil); got != Stored {
						t.Fatalf("Set = %v", got)
					}
					c.Wait()
					e, ok := c.Get("k")
					if !ok {
						t.Fatal("Get missed a fresh entry")
					}
					ttl := time.Duration(e.ExpireAt - start)
					if ttl < tt.minTTL || ttl > tt.ttl {
						t.Fatalf("jittered ttl %v outside [%v, %v]", ttl, tt.minTTL, tt.ttl)
					}
					seen[int64(ttl)] = true
					time.Sleep(ttl - time.Nanosecond)
					if _, ok := c.Get("k"); !ok {
						t.Fatalf("entry expired before its ExpireAt (ttl %v)", ttl)
					}
					time.Sleep(2 * time.Nanosecond)
					if _, ok := c.Get("k"); ok {
						t.Fatalf("entry outlived its ExpireAt (ttl %v)", ttl)
					}
				}
				if tt.minTTL < tt.ttl && len(seen) < 10 {
					t.Errorf("only %d distinct TTLs in 20 jittered Sets", len(seen))
				}
			})
		})
	}
}

func TestGetDoesNotAllocate(t *testing.T) {
	c := newTestCache(t, Config{})
	c.Set("k", Entry[string]{Version: 1}, 1, time.Hour, nil)
	c.Set("tagged", Entry[string]{Version: 1}, 1, time.Hour, []TagVersion{{Tag: "t"}})
	c.Wait()
	for _, k := range []string{"k", "tagged", "missing"} {
		if n := testing.AllocsPerRun(1000, func() { c.Get(k) }); n != 0 {
			t.Errorf("Get(%s) allocates %v times", k, n)
		}
	}
}

func TestMetrics(t *testing.T) {
	c := newTestCache(t, Config{Metrics: true})
	set(t, c, "k", "v", 1)
	if st := c.Stats(); st.KeysAdded != 1 || st.CostAdded != 1 {
		t.Errorf("KeysAdded = %d, CostAdded = %d; want 1, 1", st.KeysAdded, st.CostAdded)
	}
}

// TestExpiredEntryDoesNotBlock: expiry is lazy (the entry stays in
// ristretto), yet an expired entry is a miss and does not keep a fill with a
// lower version out (Superseded, shouldUpdate).
func TestExpiredEntryDoesNotBlock(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newTestCache(t, Config{Jitter: -1})
		if r := c.Set("k", Entry[string]{Value: "v5", Version: 5}, 1, time.Second, nil); r != Stored {
			t.Fatalf("Set v5 = %v", r)
		}
		c.Wait()
		if r := c.Set("k", Entry[string]{Value: "v3", Version: 3}, 1, time.Second, nil); r != Superseded {
			t.Fatalf("Set v3 under a live v5 = %v, want Superseded", r)
		}
		time.Sleep(time.Second)
		if e, ok := c.Get("k"); ok {
			t.Fatalf("Get after the TTL = v%d, want a miss", e.Version)
		}
		if r := c.Set("k", Entry[string]{Value: "v3", Version: 3}, 1, time.Minute, nil); r != Stored {
			t.Fatalf("Set v3 over an expired v5 = %v, want Stored", r)
		}
		c.Wait()
		if e, ok := c.Get("k"); !ok || e.Version != 3 {
			t.Fatalf("Get = %+v, %v; want v3 (ristretto's update must not keep the expired v5)", e, ok)
		}
	})
}

// TestGetAtUsesTheCallersClock: GetAt judges expiry by the reading it is
// given, and reads the clock itself only for -1.
func TestGetAtUsesTheCallersClock(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newTestCache(t, Config{Jitter: -1})
		if r := c.Set("k", Entry[string]{Version: 1}, 1, time.Second, nil); r != Stored {
			t.Fatalf("Set = %v", r)
		}
		c.Wait()
		now := c.Now()
		if _, ok := c.GetAt("k", now); !ok {
			t.Error("GetAt(now) missed a fresh entry")
		}
		if _, ok := c.GetAt("k", now+int64(time.Second)); ok {
			t.Error("GetAt(now+TTL) returned the entry: the caller's reading was ignored")
		}
		if _, ok := c.GetAt("k", -1); !ok {
			t.Error("GetAt(-1) missed a fresh entry")
		}
	})
}

// TestSweepDeletesExpiredEntries: an expired entry nobody reads again is
// deleted from ristretto by the next sweep (after its Grace), a live one and
// one without a TTL are not, and Close stops the sweeper (synctest: no
// goroutine may outlive the bubble).
func TestSweepDeletesExpiredEntries(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, err := New[string](Config{Jitter: -1, Grace: time.Second, SweepEvery: 10 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		for _, s := range []struct {
			key string
			ttl time.Duration
		}{{"short", time.Second}, {"long", time.Hour}, {"forever", 0}} {
			if r := c.Set(s.key, Entry[string]{Version: 1}, 1, s.ttl, nil); r != Stored {
				t.Fatalf("Set(%s) = %v", s.key, r)
			}
		}
		c.Wait()
		inStore := func(key string) bool {
			e, ok := c.rc.Get(c.hash(key))
			return ok && e.key == key
		}
		time.Sleep(10*time.Second + time.Millisecond) // one sweep; "short" expired 9 s ago, Grace included
		synctest.Wait()
		c.Wait()
		if inStore("short") {
			t.Error("an entry expired 9 s ago is still in the store after a sweep")
		}
		if !inStore("long") || !inStore("forever") {
			t.Error("the sweep deleted a live entry")
		}
		if n := c.Stats().Swept; n != 1 {
			t.Errorf("swept %d entries, want 1", n)
		}
	})
}

func TestGraceKeepsExpiredEntries(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, err := New[string](Config{Grace: time.Minute, Jitter: -1})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if r := c.Set("k", Entry[string]{Value: "v", Version: 1}, 1, time.Second, nil); r != Stored {
			t.Fatalf("Set = %v", r)
		}
		c.Wait()
		time.Sleep(2 * time.Second)
		e, ok := c.Get("k")
		if !ok || e.ExpireAt > c.Now() {
			t.Fatalf("with Grace, an expired entry must still be returned (ok=%v) and show it expired", ok)
		}
		time.Sleep(time.Minute)
		if _, ok := c.Get("k"); ok {
			t.Error("entry outlived TTL + Grace")
		}
	})
}
