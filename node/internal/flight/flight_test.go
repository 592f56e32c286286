package flight

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

func always(int) bool { return true }
func never(int) bool  { return false }

// work returns a start function whose work counts its runs, waits for
// release and returns the run's number.
func work(runs *atomic.Int32, release <-chan struct{}) func() (Work[int], bool) {
	return func() (Work[int], bool) {
		return Work[int]{Fn: func() int {
			n := runs.Add(1)
			<-release
			return int(n)
		}}, true
	}
}

func TestJoinCoalesces(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var g Group[string, int]
		var runs atomic.Int32
		release := make(chan struct{})
		var wg sync.WaitGroup
		got := make([]int, 10)
		var startedN atomic.Int32
		for i := range got {
			wg.Go(func() {
				c, started := g.Join("k", always, work(&runs, release))
				if started {
					startedN.Add(1)
				}
				got[i], _ = c.Wait(t.Context())
			})
		}
		synctest.Wait()
		close(release)
		wg.Wait()
		if runs.Load() != 1 || startedN.Load() != 1 {
			t.Fatalf("%d runs, %d starters for 10 concurrent callers; want 1 and 1", runs.Load(), startedN.Load())
		}
		for i, v := range got {
			if v != 1 {
				t.Errorf("caller %d got %d, want 1", i, v)
			}
		}
		synctest.Wait()
		if g.Len() != 0 {
			t.Errorf("Len = %d after the call ended, want 0", g.Len())
		}
	})
}

// TestFirstCallerLeaves: the caller that started the work cancels; the work
// goes on and the others get its result (groupcache's singleflight fails
// them all).
func TestFirstCallerLeaves(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var g Group[string, int]
		var runs atomic.Int32
		release := make(chan struct{})
		ctx, cancel := context.WithCancel(t.Context())
		first, _ := g.Join("k", always, work(&runs, release))
		second, started := g.Join("k", always, work(&runs, release))
		if started || first != second {
			t.Fatal("the second caller did not join the first call")
		}
		cancel()
		if _, err := first.Wait(ctx); !errors.Is(err, context.Canceled) {
			t.Fatalf("Wait on a cancelled ctx = %v, want context.Canceled", err)
		}
		close(release)
		if v, err := second.Wait(t.Context()); v != 1 || err != nil {
			t.Fatalf("the remaining caller got %d, %v; want 1, nil", v, err)
		}
	})
}

// TestLingerAndReuse: a finished call answers new callers while it lingers,
// only those whose reuse accepts it; a refused one starts new work that
// replaces it, and the old call's exit does not remove the new one.
func TestLingerAndReuse(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var g Group[string, int]
		var runs atomic.Int32
		lingering := make(chan struct{})
		start := func() (Work[int], bool) {
			return Work[int]{
				Fn:     func() int { return int(runs.Add(1)) },
				Linger: func(int) { <-lingering },
			}, true
		}
		c1, _ := g.Join("k", always, start)
		if v, _ := c1.Wait(t.Context()); v != 1 {
			t.Fatalf("first call = %d", v)
		}
		c2, started := g.Join("k", always, start)
		if started || c2 != c1 {
			t.Fatal("a lingering call that reuse accepts did not answer")
		}
		c3, started := g.Join("k", never, start)
		if !started || c3 == c1 {
			t.Fatal("a lingering call that reuse refuses answered")
		}
		if v, _ := c3.Wait(t.Context()); v != 2 {
			t.Fatalf("new call = %d, want 2", v)
		}
		close(lingering)
		synctest.Wait()
		if g.Len() != 0 {
			t.Errorf("Len = %d once both calls ended, want 0", g.Len())
		}
	})
}

func TestStartRefusedAndBusy(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var g Group[int, int]
		refuse := func() (Work[int], bool) { return Work[int]{}, false }
		if c, started := g.Join(1, always, refuse); c != nil || started {
			t.Fatal("Join started work that start refused")
		}
		if g.Start(1, refuse) {
			t.Fatal("Start started work that start refused")
		}
		var runs atomic.Int32
		release := make(chan struct{})
		if !g.Start(1, work(&runs, release)) {
			t.Fatal("Start on an idle key did not start")
		}
		if g.Start(1, work(&runs, release)) {
			t.Fatal("Start started a second call while one is in progress")
		}
		if c, started := g.Join(2, always, work(&runs, release)); !started || c == nil {
			t.Fatal("another key did not get its own call")
		}
		close(release)
		synctest.Wait()
		if runs.Load() != 2 {
			t.Errorf("%d runs, want 2", runs.Load())
		}
	})
}

// TestWaitTimesOut: a caller's own deadline bounds its wait, not the work.
func TestWaitTimesOut(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var g Group[string, int]
		release := make(chan struct{})
		var runs atomic.Int32
		c, _ := g.Join("k", always, work(&runs, release))
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		if _, err := c.Wait(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Wait = %v, want DeadlineExceeded", err)
		}
		close(release)
	})
}

// TestJoinFreshQueuesBehindTheCallInProgress: a fresh caller arriving while
// a call runs is not handed it; it shares the one queued behind it with
// every fresh caller that arrives meanwhile, which starts only once the
// first finished. A plain Join still shares the call in progress.
func TestJoinFreshQueuesBehindTheCallInProgress(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var g Group[string, int]
		var runs atomic.Int32
		release := make(chan struct{})
		first, started := g.JoinFresh("k", work(&runs, release))
		if !started {
			t.Fatal("JoinFresh with nothing in flight did not start a call")
		}
		synctest.Wait()
		if plain, started := g.Join("k", always, work(&runs, release)); started || plain != first {
			t.Fatal("a plain Join did not share the call in progress")
		}
		a, startedA := g.JoinFresh("k", work(&runs, release))
		b, startedB := g.JoinFresh("k", work(&runs, release))
		if a == first || a != b || !startedA || startedB {
			t.Fatalf("fresh callers during a call: got the running call=%v, shared one queued call=%v, starters=%v,%v",
				a == first, a == b, startedA, startedB)
		}
		synctest.Wait()
		if runs.Load() != 1 {
			t.Fatalf("%d runs while the first call is in progress; the queued one must wait for it", runs.Load())
		}
		release <- struct{}{} // the first call ends
		if v, _ := first.Wait(t.Context()); v != 1 {
			t.Fatalf("first call = %d, want 1", v)
		}
		synctest.Wait()
		if runs.Load() != 2 || a.Finished() {
			t.Fatalf("after the first call: %d runs, queued call finished=%v; want it running", runs.Load(), a.Finished())
		}
		close(release)
		if v, _ := a.Wait(t.Context()); v != 2 {
			t.Fatalf("queued call = %d, want 2 (a run that began after its callers arrived)", v)
		}
		// Finished and lingering is not reused by a fresh caller.
		c, started := g.JoinFresh("k", work(&runs, release))
		if !started || c == a {
			t.Fatal("JoinFresh reused a finished call")
		}
		if v, _ := c.Wait(t.Context()); v != 3 {
			t.Fatalf("third call = %d, want 3", v)
		}
		synctest.Wait()
		if g.Len() != 0 {
			t.Errorf("Len = %d once every call ended, want 0", g.Len())
		}
	})
}

// TestJoinFreshRefused: start refusing (the owner is closing) queues nothing.
func TestJoinFreshRefused(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var g Group[string, int]
		var runs atomic.Int32
		release := make(chan struct{})
		first, _ := g.JoinFresh("k", work(&runs, release))
		refuse := func() (Work[int], bool) { return Work[int]{}, false }
		if c, started := g.JoinFresh("k", refuse); c != nil || started {
			t.Fatal("JoinFresh queued work that start refused")
		}
		close(release)
		if v, _ := first.Wait(t.Context()); v != 1 {
			t.Fatalf("first call = %d", v)
		}
		synctest.Wait()
		if runs.Load() != 1 || g.Len() != 0 {
			t.Fatalf("%d runs, Len %d; want 1 and 0", runs.Load(), g.Len())
		}
	})
}
