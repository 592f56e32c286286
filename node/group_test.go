package node

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/nearcache/nearcache/node/internal/flight"
)

// standalone starts a Standalone node and a "rows" group over src, closed at cleanup.
func standalone(t *testing.T, src *source, mut func(*GroupConfig[string])) (*Node, *Group[string]) {
	t.Helper()
	n, err := Start(t.Context(), Config{Name: "solo", Standalone: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close(context.Background()) })
	cfg := GroupConfig[string]{Loader: src}
	if mut != nil {
		mut(&cfg)
	}
	g, err := NewGroup(n, "rows", cfg)
	if err != nil {
		t.Fatal(err)
	}
	return n, g
}

func mustGet(t *testing.T, g *Group[string], key string, opts ...ReadOption) string {
	t.Helper()
	v, err := g.Get(t.Context(), key, opts...)
	if err != nil {
		t.Fatalf("Get(%q) error: %v", key, err)
	}
	return v
}

func TestGetCachesAndHits(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := newSource()
		src.put("k", "v1")
		_, g := standalone(t, src, nil)
		if got := mustGet(t, g, "k"); got != "v1" {
			t.Fatalf("Get = %q, want v1", got)
		}
		g.cache.Wait()
		for range 5 {
			mustGet(t, g, "k")
		}
		if n := src.loads(); n != 1 {
			t.Errorf("loader called %d times, want 1 (later Gets must hit)", n)
		}
		if s := g.stats(); s.Hits != 5 || s.Misses != 1 {
			t.Errorf("hits, misses = %d, %d; want 5, 1", s.Hits, s.Misses)
		}
	})
}

func TestNotFound(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, g := standalone(t, newSource(), nil)
		_, err := g.Get(t.Context(), "missing")
		if !IsNotFound(err) {
			t.Fatalf("Get(missing) error = %v, want a not-found error", err)
		}
		var le *LoadError
		if !errors.As(err, &le) || le.Key != "missing" {
			t.Errorf("error %v is not a *LoadError for the key", err)
		}
	})
}

func TestCoalescing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := newSource()
		src.put("hot", "v1")
		gt := newGate()
		src.setHold(gt.hold)
		_, g := standalone(t, src, nil)
		const readers = 64
		var wg sync.WaitGroup
		errs := make(chan error, readers)
		for range readers {
			wg.Go(func() {
				v, err := g.Get(context.Background(), "hot")
				if err == nil && v != "v1" {
					err = fmt.Errorf("got %q", v)
				}
				errs <- err
			})
		}
		synctest.Wait() // every reader is parked on the one load
		close(gt.release)
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		if n := src.loads(); n != 1 {
			t.Errorf("loader called %d times for %d concurrent readers, want 1", n, readers)
		}
	})
}

func TestFirstCallerCancelDoesNotFailOthers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := newSource()
		src.put("k", "v1")
		gt := newGate()
		src.setHold(gt.hold)
		_, g := standalone(t, src, nil)

		ctx, cancel := context.WithCancel(context.Background())
		firstErr := make(chan error, 1)
		go func() { _, err := g.Get(ctx, "k"); firstErr <- err }()
		<-gt.started // the first caller's load is running
		others := make(chan error, 8)
		for range 8 {
			go func() {
				v, err := g.Get(context.Background(), "k")
				if err == nil && v != "v1" {
					err = fmt.Errorf("got %q", v)
				}
				others <- err
			}()
		}
		synctest.Wait()
		cancel()
		if err := <-firstErr; !errors.Is(err, context.Canceled) {
			t.Errorf("first caller: err = %v, want context.Canceled", err)
		}
		close(gt.release)
		for range 8 {
			if err := <-others; err != nil {
				t.Errorf("a waiter failed with the first caller: %v", err)
			}
		}
		if n := src.loads(); n != 1 {
			t.Errorf("loader called %d times, want 1", n)
		}
	})
}

// TestSlowFillLosesToInvalidation is G8 and G2 on one node: a fill that read
// the old row and returns after the invalidation is neither stored nor served
// to a reader that started after Invalidate returned.
func TestSlowFillLosesToInvalidation(t *testing.T) {
	for _, versioning := range []Versioning{SourceVersions, ClockVersions} {
		t.Run(fmt.Sprint(versioning), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				src := newSource()
				src.put("k", "old")
				gt := newGate()
				src.setHold(gt.hold)
				_, g := standalone(t, src, func(c *GroupConfig[string]) { c.Versioning = versioning })

				slow := make(chan string, 1)
				go func() { v, _ := g.Get(context.Background(), "k"); slow <- v }()
				<-gt.started // the fill has read "old"

				ver := src.put("k", "new")
				if versioning == ClockVersions {
					ver = 0
				}
				if err := g.Invalidate(t.Context(), "k", ver); err != nil {
					t.Fatal(err)
				}
				src.setHold(nil) // later loads are fast
				after := make(chan string, 1)
				go func() { v, _ := g.Get(context.Background(), "k"); after <- v }()
				synctest.Wait()
				close(gt.release)
				if v := <-after; v != "new" {
					t.Errorf("Get after Invalidate returned %q, want new (G2)", v)
				}
				<-slow // the slow reader began before the write: either value is allowed
				g.cache.Wait()
				if e, ok := g.cache.Get("k"); ok && e.Value != "new" {
					t.Errorf("cache holds %q v%d after the slow fill, want new or nothing (G8)", e.Value, e.Version)
				}
				if v := mustGet(t, g, "k"); v != "new" {
					t.Errorf("Get = %q, want new", v)
				}
			})
		})
	}
}

// TestReadYourWritesConcurrent is G2 under concurrency: readers hammer a key
// while a writer updates and invalidates it; after each Invalidate returns,
// the writer's own read sees at least that version.
func TestReadYourWritesConcurrent(t *testing.T) {
	src := newSource()
	src.put("k", "0")
	n, err := Start(t.Context(), Config{Name: "solo", Standalone: true})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close(context.Background())
	g, err := NewGroup(n, "rows", GroupConfig[string]{Loader: LoaderFunc[string](func(ctx context.Context, key string) (string, uint64, error) {
		_, ver, err := src.Load(ctx, key)
		return fmt.Sprint(ver), ver, err // the value is its version: easy to check
	})})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for ctx.Err() == nil {
				g.Get(ctx, "k")
			}
		})
	}
	for i := range 300 {
		ver := src.put("k", "")
		if err := g.Invalidate(t.Context(), "k", ver); err != nil {
			t.Fatal(err)
		}
		got, err := g.Get(t.Context(), "k")
		if err != nil {
			t.Fatal(err)
		}
		if v, _ := strconv.ParseUint(got, 10, 64); v < ver {
			t.Fatalf("write %d: read version %d after Invalidate(%d) returned (G2)", i, v, ver)
		}
	}
	cancel()
	wg.Wait()
}

func TestTagInvalidation(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := newSource()
		src.put("user:1:orders", "o1")
		src.put("user:1:profile", "p1")
		src.put("user:2:orders", "x1")
		_, g := standalone(t, src, func(c *GroupConfig[string]) {
			c.Tags = func(key string) []string { return []string{key[:6]} } // "user:1"
		})
		for _, k := range []string{"user:1:orders", "user:1:profile", "user:2:orders"} {
			mustGet(t, g, k)
		}
		g.cache.Wait()
		src.put("user:1:orders", "o2")
		src.put("user:1:profile", "p2")
		src.put("user:2:orders", "x2") // written, but its tag is not invalidated
		if err := g.InvalidateTag(t.Context(), "user:1"); err != nil {
			t.Fatal(err)
		}
		for k, want := range map[string]string{"user:1:orders": "o2", "user:1:profile": "p2", "user:2:orders": "x1"} {
			if got := mustGet(t, g, k); got != want {
				t.Errorf("after InvalidateTag(user:1): Get(%q) = %q, want %q", k, got, want)
			}
		}
	})
}

func TestTagBumpDuringFill(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := newSource()
		src.put("a:1", "old")
		gt := newGate()
		src.setHold(gt.hold)
		_, g := standalone(t, src, func(c *GroupConfig[string]) { c.Tags = func(string) []string { return []string{"a"} } })
		started := make(chan string, 1)
		go func() { v, _ := g.Get(context.Background(), "a:1"); started <- v }()
		<-gt.started
		src.put("a:1", "new")
		if err := g.InvalidateTag(t.Context(), "a"); err != nil {
			t.Fatal(err)
		}
		// A reader that starts now must not be served the held fill's value.
		src.setHold(nil)
		after := make(chan string, 1)
		go func() { v, _ := g.Get(context.Background(), "a:1"); after <- v }()
		synctest.Wait()
		close(gt.release)
		if v := <-after; v != "new" {
			t.Errorf("Get after InvalidateTag = %q, want new", v)
		}
		<-started
		g.cache.Wait()
		if e, ok := g.cache.Get("a:1"); ok && e.Value != "new" {
			t.Errorf("a fill that began before the tag bump was stored: %q", e.Value)
		}
	})
}

func TestReadModes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := newSource()
		src.put("k", "v1")
		_, g := standalone(t, src, nil)
		mustGet(t, g, "k")
		g.cache.Wait()

		// The source changes behind the cache's back (no invalidation).
		src.put("k", "v2")
		if got := mustGet(t, g, "k"); got != "v1" {
			t.Fatalf("plain Get = %q, want the cached v1", got)
		}
		before := src.loads()
		if got := mustGet(t, g, "k", Verified()); got != "v2" {
			t.Errorf("Verified Get = %q, want v2 (the version check must see the change)", got)
		}
		if src.loads() != before+1 {
			t.Errorf("Verified with a stale entry: %d loads, want 1", src.loads()-before)
		}
		g.cache.Wait()
		before = src.loads()
		if got := mustGet(t, g, "k", Verified()); got != "v2" || src.loads() != before {
			t.Errorf("Verified on a current entry = %q with %d loads, want v2 with 0", got, src.loads()-before)
		}
		src.put("k", "v3")
		if got := mustGet(t, g, "k", Authoritative()); got != "v3" {
			t.Errorf("Authoritative Get = %q, want v3", got)
		}
		g.cache.Wait()
		if got := mustGet(t, g, "k"); got != "v3" {
			t.Errorf("after an authoritative read the cache holds %q, want v3 (refreshed)", got)
		}
	})
}

func TestSetWriteThrough(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := newSource()
		src.put("k", "v1")
		_, g := standalone(t, src, nil)
		ver := src.put("k", "v2")
		if err := g.Set(t.Context(), "k", "v2", ver); err != nil {
			t.Fatal(err)
		}
		g.cache.Wait()
		if got := mustGet(t, g, "k"); got != "v2" || src.loads() != 0 {
			t.Errorf("after Set: Get = %q with %d loads, want v2 from the cache", got, src.loads())
		}
		if err := g.Set(t.Context(), "k", "v1", 1); err != nil {
			t.Fatal(err)
		}
		g.cache.Wait()
		if got := mustGet(t, g, "k"); got != "v2" {
			t.Errorf("an older Set replaced a newer value: Get = %q", got)
		}
	})
}

func TestStaleSourceIsNotServed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := newSource()
		src.put("k", "v1")
		_, g := standalone(t, src, nil)
		// A writer committed version 7 elsewhere; this source (a lagging
		// replica) still answers version 1.
		if err := g.Invalidate(t.Context(), "k", 7); err != nil {
			t.Fatal(err)
		}
		_, err := g.Get(t.Context(), "k")
		var se *StaleError
		if !errors.As(err, &se) || se.Version != 1 || se.Floor != 7 {
			t.Fatalf("Get error = %v, want *StaleError{Version 1, Floor 7}", err)
		}
	})
}

func TestLoadTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n, err := Start(t.Context(), Config{Name: "solo", Standalone: true, LoadTimeout: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		defer n.Close(context.Background())
		g, err := NewGroup(n, "g", GroupConfig[string]{Loader: LoaderFunc[string](func(ctx context.Context, key string) (string, uint64, error) {
			<-ctx.Done()
			return "", 0, ctx.Err()
		})})
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		_, err = g.Get(context.Background(), "k")
		if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) != time.Second {
			t.Errorf("Get = %v after %v, want DeadlineExceeded after LoadTimeout (1s)", err, time.Since(start))
		}
	})
}

func TestVersionRules(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := newSource()
		_, g := standalone(t, src, nil)
		if err := g.Invalidate(t.Context(), "k", 0); err == nil {
			t.Error("Invalidate(version 0) on a SourceVersions group: no error")
		}
		if err := g.Invalidate(t.Context(), "", 1); err == nil {
			t.Error("Invalidate of an empty key: no error")
		}
		zero, err := NewGroup(g.n, "zero", GroupConfig[string]{Loader: LoaderFunc[string](func(context.Context, string) (string, uint64, error) {
			return "v", 0, nil
		})})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := zero.Get(t.Context(), "k"); err == nil {
			t.Error("a loader returning version 0 in a SourceVersions group: no error")
		}
		clock, err := NewGroup(g.n, "clock", GroupConfig[string]{Loader: src, Versioning: ClockVersions})
		if err != nil {
			t.Fatal(err)
		}
		if err := clock.Invalidate(t.Context(), "k", 5); err == nil {
			t.Error("Invalidate(version 5) on a ClockVersions group: no error")
		}
		if _, err := NewGroup(g.n, "rows", GroupConfig[string]{Loader: src}); err == nil {
			t.Error("a second group named rows: no error")
		}
	})
}

func TestConfigValidation(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
	}{
		{"no name", Config{Standalone: true}},
		{"short key", Config{Name: "a", Standalone: true, SecretKey: []byte("short")}},
		{"negative staleness", Config{Name: "a", Standalone: true, MaxStaleness: -1}},
		{"retention too short", Config{Name: "a", Standalone: true, FloorRetention: time.Second}},
		{"bad degraded mode", Config{Name: "a", Standalone: true, Degraded: 7}},
		{"long cluster name", Config{Name: "a", Cluster: strings.Repeat("c", 33)}},
		// The gossip layer's limits, checked once there (node used to accept 255).
		{"long name", Config{Name: strings.Repeat("n", 65)}},
		{"long meta", Config{Name: "a", Meta: make([]byte, 509)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if n, err := Start(t.Context(), tt.cfg); err == nil {
				n.Close(context.Background())
				t.Errorf("Start(%+v) succeeded, want an error", tt.cfg)
			}
		})
	}
}

func TestClosed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := newSource()
		src.put("k", "v")
		n, g := standalone(t, src, nil)
		mustGet(t, g, "k")
		if err := n.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
		if _, err := g.Get(t.Context(), "k"); !errors.Is(err, ErrClosed) {
			t.Errorf("Get after Close = %v, want ErrClosed", err)
		}
		if err := g.Invalidate(t.Context(), "k", 2); !errors.Is(err, ErrClosed) {
			t.Errorf("Invalidate after Close = %v, want ErrClosed", err)
		}
		if err := n.Close(context.Background()); err != nil {
			t.Errorf("second Close = %v", err)
		}
	})
}

func TestLoadCap(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := newSource()
		for i := range 5 {
			src.put(fmt.Sprint(i), "v")
		}
		gt := newGate()
		src.setHold(func(ctx context.Context, key string) error {
			gt.started <- key
			<-gt.release // a slow loader that ignores ctx: it keeps its slot
			return nil
		})
		n, err := Start(t.Context(), Config{Name: "solo", Standalone: true, MaxConcurrentLoads: 2, LoadTimeout: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		defer n.Close(context.Background())
		g, err := NewGroup(n, "rows", GroupConfig[string]{Loader: src})
		if err != nil {
			t.Fatal(err)
		}
		errs := make(chan error, 5)
		for i := range 5 {
			go func() { _, err := g.Get(context.Background(), fmt.Sprint(i)); errs <- err }()
		}
		synctest.Wait()
		if got := len(gt.started); got != 2 {
			t.Fatalf("%d loads running with MaxConcurrentLoads 2", got)
		}
		time.Sleep(2 * time.Second) // the queued loads' LoadTimeout passes
		var overloaded int
		for range 3 {
			if err := <-errs; errors.Is(err, ErrOverloaded) {
				overloaded++
			}
		}
		if overloaded != 3 {
			t.Errorf("%d of the 3 queued loads failed with ErrOverloaded", overloaded)
		}
		close(gt.release)
		for range 2 {
			<-errs
		}
	})
}

// TestStartWithUnreachableSeed: Start returns (bounded by ctx) and the node
// reads through to the loader until it has caught up with a peer.
func TestStartWithUnreachableSeed(t *testing.T) {
	src := newSource()
	src.put("k", "v1")
	cfg := DefaultLocalConfig("lonely")
	cfg.Cluster = testCluster()
	cfg.Join = []string{"127.0.0.1:1"} // nothing listens there
	ctx, cancel := context.WithTimeout(t.Context(), 500*time.Millisecond)
	defer cancel()
	n, err := Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close(context.Background())
	if n.Trusted() {
		t.Fatal("a node that reached no seed trusts its cache")
	}
	g, err := NewGroup(n, "rows", GroupConfig[string]{Loader: src})
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if got := mustGet(t, g, "k"); got != "v1" {
			t.Fatalf("Get = %q", got)
		}
	}
	if src.loads() != 3 {
		t.Errorf("%d loads for 3 reads on an untrusted node, want 3 (read-through)", src.loads())
	}
}

// TestUnstoredFlightNotJoined: a finished flight whose result was not
// stored (the moment between its waiters' wake-up and its goroutine's
// delete) answers no later reader; a stored one, still being applied, does.
// Regression: TestStartWithUnreachableSeed saw 1 load for 3 reads on an
// untrusted node when the second read came in that moment.
//
// Scheduling-dependent; green under load with:
//
//	go test -race -count=50 -run TestUnstoredFlightNotJoined ./node/  # beside: yes >/dev/null & yes >/dev/null &
func TestUnstoredFlightNotJoined(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := newSource()
		src.put("k", "v1")
		_, g := standalone(t, src, nil)
		for _, stored := range []bool{false, true} {
			// A finished flight held in the table, as between its waiters'
			// wake-up and its goroutine's exit.
			release := make(chan struct{})
			refuse := func(fillResult[string]) bool { return false }
			c, _ := g.flights.Join(flightKey{key: "k"}, refuse, func() (flight.Work[fillResult[string]], bool) {
				return flight.Work[fillResult[string]]{
					Fn: func() fillResult[string] {
						return fillResult[string]{val: "from the flight", version: 1, stored: stored}
					},
					Linger: func(fillResult[string]) { <-release },
				}, true
			})
			if _, err := c.Wait(t.Context()); err != nil {
				t.Fatal(err)
			}
			before := src.loads()
			got := mustGet(t, g, "k")
			loaded := src.loads() > before
			if stored && (loaded || got != "from the flight") {
				t.Errorf("a stored finished flight: Get = %q, loaded %v; want its value, no load", got, loaded)
			}
			if !stored && (!loaded || got != "v1") {
				t.Errorf("an unstored finished flight: Get = %q, loaded %v; want a load of v1", got, loaded)
			}
			close(release)
			synctest.Wait()
			g.cache.Delete("k")
			g.cache.Wait() // ristretto applies deletes asynchronously too
		}
	})
}

// TestLaggingSourceCatchesUp: the source answers below the floor for longer
// than a few quick reloads (a replica catching up, or a hot key written
// during every load) and then catches up within the LoadTimeout: the read
// waits and returns the new version instead of failing. Catches: a fixed,
// small number of reloads (the read failed with StaleError after three).
func TestLaggingSourceCatchesUp(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n, err := Start(t.Context(), Config{Name: "solo", Standalone: true, LoadTimeout: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		defer n.Close(context.Background())
		var calls int
		caughtUp := time.Now().Add(300 * time.Millisecond)
		g, err := NewGroup(n, "rows", GroupConfig[string]{Loader: LoaderFunc[string](func(context.Context, string) (string, uint64, error) {
			calls++
			if time.Now().Before(caughtUp) {
				return "old", 1, nil
			}
			return "new", 7, nil
		})})
		if err != nil {
			t.Fatal(err)
		}
		if err := g.Invalidate(t.Context(), "k", 7); err != nil {
			t.Fatal(err)
		}
		got, err := g.Get(t.Context(), "k")
		if err != nil || got != "new" {
			t.Fatalf("Get = %q, %v after %d loads; want the caught-up version", got, err, calls)
		}
		if calls < 4 {
			t.Errorf("%d loads, want more than the first few", calls)
		}
		// One Get, however many reloads: the dashboard's hit ratio counts
		// Gets (issue 13 item 7).
		if st := g.Stats(); st.StaleRejected != 1 || st.Misses != 1 {
			t.Errorf("StaleRejected %d, Misses %d after one Get with %d loads; want 1 and 1", st.StaleRejected, st.Misses, calls)
		}
	})
}
