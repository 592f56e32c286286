package metrics

import (
	"errors"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nearcache/nearcache/node"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestObserveWhileDetached(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	m := New(reg)
	m.ObserveLoad("g", time.Millisecond, nil) // before Attach: dropped, no panic
	m.Attach(fixedStats)
	m.ObserveLoad("g", time.Millisecond, nil)
	if n, err := testutil.GatherAndCount(reg, "nearcache_load_duration_seconds"); err != nil || n != 1 {
		t.Errorf("after one observation: count = %d, %v; want 1", n, err)
	}
	m.Detach()
	m.ObserveLoad("g", time.Millisecond, nil) // after Detach: dropped
	m.ObservePropagation("g", time.Millisecond)
	// Re-attach: histograms start fresh, the old observations are gone.
	m.Attach(fixedStats)
	defer m.Detach()
	if n, err := testutil.GatherAndCount(reg, "nearcache_load_duration_seconds", "nearcache_propagation_delay_seconds"); err != nil || n != 0 {
		t.Errorf("after re-attach: count = %d, %v; want 0", n, err)
	}
}

func TestDetachUnregisters(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	m1 := New(reg)
	m1.Attach(fixedStats)
	if err := m1.Err(); err != nil {
		t.Fatalf("first Attach: %v", err)
	}
	m1.Detach()
	if n, err := testutil.GatherAndCount(reg); err != nil || n != 0 {
		t.Errorf("after Detach: %d metrics gathered (%v), want 0", n, err)
	}
	m1.Detach() // twice: no-op

	// Another Metrics, and the same one again, can now attach.
	m2 := New(reg)
	m2.Attach(fixedStats)
	if err := m2.Err(); err != nil {
		t.Fatalf("Attach of a second Metrics after Detach: %v", err)
	}
	m2.Detach()
	m1.Attach(fixedStats)
	if err := m1.Err(); err != nil {
		t.Fatalf("re-Attach after Detach: %v", err)
	}
	m1.Detach()
}

func TestSameRegistryClash(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	m1 := New(reg)
	m1.Attach(fixedStats)
	defer m1.Detach()
	m2 := New(reg)
	m2.Attach(fixedStats)
	var are prometheus.AlreadyRegisteredError
	if err := m2.Err(); !errors.As(err, &are) {
		t.Fatalf("second Metrics on one registry: Err() = %v, want AlreadyRegisteredError", err)
	}
	// The failed one's Detach must not unregister the first one's collector.
	m2.Detach()
	if n, err := testutil.GatherAndCount(reg, "nearcache_members"); err != nil || n != 1 {
		t.Errorf("after failed Metrics' Detach: nearcache_members count = %d, %v; want 1", n, err)
	}
	m2.ObserveLoad("g", time.Millisecond, nil) // no panic, nothing recorded
	if n, _ := testutil.GatherAndCount(reg, "nearcache_load_duration_seconds"); n != 0 {
		t.Errorf("failed Metrics recorded a load")
	}
}

func TestCoexist(t *testing.T) {
	stats := func(members int) func() node.Stats {
		return func() node.Stats { return node.Stats{Members: members} }
	}
	t.Run("two registries", func(t *testing.T) {
		r1, r2 := prometheus.NewPedanticRegistry(), prometheus.NewPedanticRegistry()
		m1, m2 := New(r1), New(r2)
		m1.Attach(stats(1))
		m2.Attach(stats(2))
		defer m1.Detach()
		defer m2.Detach()
		for i, m := range []*Metrics{m1, m2} {
			if err := m.Err(); err != nil {
				t.Fatalf("m%d: %v", i+1, err)
			}
		}
		if v := gatherValues(t, r1)["nearcache_members"]; v != 1 {
			t.Errorf("r1 members = %v, want 1", v)
		}
		if v := gatherValues(t, r2)["nearcache_members"]; v != 2 {
			t.Errorf("r2 members = %v, want 2", v)
		}
	})
	t.Run("one registry wrapped per node", func(t *testing.T) {
		reg := prometheus.NewPedanticRegistry()
		var ms []*Metrics
		for i, name := range []string{"a", "b"} {
			m := New(prometheus.WrapRegistererWith(prometheus.Labels{"node": name}, reg))
			m.Attach(stats(i + 1))
			if err := m.Err(); err != nil {
				t.Fatalf("node %s: %v", name, err)
			}
			ms = append(ms, m)
		}
		got := gatherValues(t, reg)
		if got[`nearcache_members{node="a"}`] != 1 || got[`nearcache_members{node="b"}`] != 2 {
			t.Errorf("members = %v", got)
		}
		ms[0].Detach() // through the wrapper: must unregister a only
		got = gatherValues(t, reg)
		if _, ok := got[`nearcache_members{node="a"}`]; ok {
			t.Errorf("node a still exported after Detach")
		}
		if got[`nearcache_members{node="b"}`] != 2 {
			t.Errorf("node b lost after a's Detach: %v", got)
		}
		ms[1].Detach()
	})
}

func TestAttachMisuse(t *testing.T) {
	t.Run("twice", func(t *testing.T) {
		reg := prometheus.NewPedanticRegistry()
		m := New(reg)
		m.Attach(fixedStats)
		defer m.Detach()
		m.Attach(fixedStats)
		// Caught before registering, not as a confusing name clash.
		var are prometheus.AlreadyRegisteredError
		if err := m.Err(); err == nil || errors.As(err, &are) {
			t.Errorf("second Attach without Detach: Err() = %v, want a misuse error", err)
		}
		if n, _ := testutil.GatherAndCount(reg, "nearcache_members"); n != 1 {
			t.Errorf("first attachment lost: nearcache_members count = %d", n)
		}
	})
	t.Run("nil stats", func(t *testing.T) {
		m := New(prometheus.NewPedanticRegistry())
		m.Attach(nil)
		defer m.Detach()
		if m.Err() == nil {
			t.Error("Attach(nil): Err() = nil")
		}
	})
}

func TestNoStatsAfterDetach(t *testing.T) {
	t.Run("stale collector", func(t *testing.T) {
		reg := prometheus.NewPedanticRegistry()
		m := New(reg)
		var calls atomic.Int64
		m.Attach(func() node.Stats { calls.Add(1); return fixedStats() })
		a := m.cur.Load() // what a Gather running across Detach holds
		m.Detach()
		ch := make(chan prometheus.Metric, 1000)
		a.Collect(ch)
		if n := calls.Load(); n != 0 {
			t.Errorf("stats called %d times after Detach", n)
		}
		if len(ch) != 0 {
			t.Errorf("detached collector emitted %d metrics", len(ch))
		}
	})
	t.Run("waits for running stats", func(t *testing.T) {
		reg := prometheus.NewPedanticRegistry()
		m := New(reg)
		var (
			statsDone atomic.Bool
			entered   = make(chan struct{})
			release   = make(chan struct{})
			once      sync.Once
		)
		m.Attach(func() node.Stats {
			once.Do(func() {
				close(entered)
				<-release
				statsDone.Store(true)
			})
			return fixedStats()
		})
		var wg sync.WaitGroup
		wg.Go(func() {
			if _, err := reg.Gather(); err != nil {
				t.Errorf("Gather: %v", err)
			}
		})
		<-entered // a scrape is inside stats
		wg.Go(func() {
			m.Detach()
			if !statsDone.Load() {
				t.Error("Detach returned while stats was running")
			}
		})
		for range 100 { // give a broken Detach the chance to return early
			runtime.Gosched()
		}
		close(release)
		wg.Wait()
	})
}

func TestConcurrentUse(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	m := New(reg)
	m.Attach(fixedStats)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 2 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				m.ObserveLoad("users", time.Millisecond, nil)
				m.ObservePropagation("users", time.Millisecond)
			}
		})
	}
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := reg.Gather(); err != nil {
				t.Errorf("Gather: %v", err)
				return
			}
		}
	})
	for range 50 {
		m.Detach()
		m.Attach(fixedStats)
		if err := m.Err(); err != nil {
			t.Errorf("re-Attach: %v", err)
		}
	}
	close(stop)
	wg.Wait()
	m.Detach()
}
