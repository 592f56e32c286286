package node

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/nearcache/nearcache/gossip/gossiptest"
)

func TestNegativeCaching(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := newSource()
		_, g := standalone(t, src, func(c *GroupConfig[string]) { c.NegativeTTL = time.Second })
		for range 3 {
			if _, err := g.Get(t.Context(), "k"); !IsNotFound(err) {
				t.Fatalf("Get(missing) = %v, want not found", err)
			}
			g.cache.Wait()
		}
		if n := src.loads(); n != 1 {
			t.Errorf("%d loads for a missing key read 3 times, want 1 (negative caching)", n)
		}
		// The row is created and invalidated: the negative entry ends at once.
		ver := src.put("k", "v1")
		if err := g.Invalidate(t.Context(), "k", ver); err != nil {
			t.Fatal(err)
		}
		if got := mustGet(t, g, "k"); got != "v1" {
			t.Errorf("after create + Invalidate: Get = %q, want v1", got)
		}
		// A negative entry expires after NegativeTTL.
		if _, err := g.Get(t.Context(), "other"); !IsNotFound(err) {
			t.Fatal(err)
		}
		g.cache.Wait()
		before := src.loads()
		time.Sleep(2 * time.Second)
		g.Get(t.Context(), "other")
		if src.loads() != before+1 {
			t.Error("a negative entry outlived NegativeTTL")
		}
		if s := g.stats(); s.NegativeHits != 2 {
			t.Errorf("NegativeHits = %d, want 2", s.NegativeHits)
		}
	})
}

// TestEarlyRefresh: a hot key is reloaded in the background before its TTL
// ends, so its readers never miss after the first load.
func TestEarlyRefresh(t *testing.T) {
	for _, tt := range []struct {
		name       string
		beta       float64
		wantMisses func(uint64) bool
	}{
		// beta 3: the refresh starts early enough that a miss before it lands
		// has a probability below 1e-9 (with beta 1 it is a few percent per
		// expiry for a load this slow relative to the read rate sampled).
		{"on", 3, func(m uint64) bool { return m == 1 }},
		{"off", -1, func(m uint64) bool { return m > 1 }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				src := newSource()
				src.put("hot", "v")
				src.setHold(func(ctx context.Context, key string) error {
					time.Sleep(100 * time.Millisecond) // a slow query
					return nil
				})
				_, g := standalone(t, src, func(c *GroupConfig[string]) {
					c.TTL = 10 * time.Second
					c.EarlyRefresh = tt.beta
				})
				for end := time.Now().Add(35 * time.Second); time.Now().Before(end); {
					if _, err := g.Get(t.Context(), "hot"); err != nil {
						t.Fatal(err)
					}
					g.cache.Wait()
					time.Sleep(time.Millisecond)
				}
				s := g.stats()
				t.Logf("35s of reads, TTL 10s: %d loads, %d misses, %d early refreshes", src.loads(), s.Misses, s.EarlyRefreshes)
				if !tt.wantMisses(s.Misses) {
					t.Errorf("early refresh %s: %d misses", tt.name, s.Misses)
				}
				if tt.name == "on" && (s.EarlyRefreshes < 3 || src.loads() > 6) {
					t.Errorf("%d early refreshes, %d loads: want one refresh per TTL period", s.EarlyRefreshes, src.loads())
				}
			})
		})
	}
}

func TestStaleOnError(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := newSource()
		src.put("k", "v1")
		n, err := Start(t.Context(), Config{Name: "solo", Standalone: true, MaxStaleness: 2 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		defer n.Close(context.Background())
		down := errors.New("database is down")
		g, err := NewGroup(n, "rows", GroupConfig[string]{Loader: src, TTL: time.Second, StaleOnError: true, EarlyRefresh: -1})
		if err != nil {
			t.Fatal(err)
		}
		mustGet(t, g, "k")
		g.cache.Wait()
		src.setHold(func(context.Context, string) error { return down })

		time.Sleep(1500 * time.Millisecond) // expired 0.5s ago: within MaxStaleness
		if got, err := g.Get(t.Context(), "k"); err != nil || got != "v1" {
			t.Errorf("source down, value expired 0.5s ago: Get = %q, %v; want the stale v1", got, err)
		}
		time.Sleep(2 * time.Second) // now 2.5s past expiry: beyond MaxStaleness
		if _, err := g.Get(t.Context(), "k"); !errors.Is(err, down) {
			t.Errorf("beyond MaxStaleness: Get error = %v, want the load error", err)
		}

		// An invalidated value is never served, even when the source is down.
		src.setHold(nil)
		mustGet(t, g, "k")
		g.cache.Wait()
		if err := g.Invalidate(t.Context(), "k", 2); err != nil {
			t.Fatal(err)
		}
		src.setHold(func(context.Context, string) error { return down })
		time.Sleep(1500 * time.Millisecond)
		if got, err := g.Get(t.Context(), "k"); err == nil {
			t.Errorf("served %q after its invalidation while the source was down", got)
		}
		if s := g.stats(); s.StaleServed != 1 {
			t.Errorf("StaleServed = %d, want 1", s.StaleServed)
		}
	})
}

// TestClusteredHitExpiresOnTheNodeClock: a clustered node's hit hands the
// trust lease's clock reading to the store (Cache.GetAt), so the store must
// count from the node's epoch. The group is made 10 minutes after the node
// started: were its clock its own, every entry would look 10 minutes old.
func TestClusteredHitExpiresOnTheNodeClock(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := newSource()
		src.put("k", "v1")
		ms := memCluster(t, gossiptest.New(3), 2, src, nil)
		time.Sleep(10 * time.Minute)
		g, err := NewGroup(ms[1].n, "ttl", GroupConfig[string]{Loader: src, TTL: 10 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		if !ms[1].n.Trusted() {
			t.Fatal("node not trusted after 10 quiet minutes")
		}
		mustGet(t, g, "k")
		g.cache.Wait()
		before := src.loads()
		time.Sleep(5 * time.Second)
		mustGet(t, g, "k")
		if n := src.loads() - before; n != 0 {
			t.Fatalf("%d loads for a read 5 s into a 10 s TTL, want a hit", n)
		}
		time.Sleep(6 * time.Second)
		mustGet(t, g, "k")
		if n := src.loads() - before; n != 1 {
			t.Fatalf("%d loads for a read 11 s into a 10 s TTL, want 1 (expired)", n)
		}
	})
}
