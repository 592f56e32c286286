package node

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/nearcache/nearcache/gossip/gossiptest"
)

// syncBuffer is a log sink for tests: the sampler logs from its goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestSamplerFindsAForgottenInvalidation: a write to the source that never
// called Invalidate leaves nodes serving the old row; the sampler, checking
// every hit here within a budget of 5 checks a second, counts those hits as
// beyond the bound once MaxStaleness passed without an invalidation, logs
// the key, and keeps its checks within the budget. Writes that do
// invalidate are not reported. Catches: a sampler that never samples, never
// checks, or counts a superseded hit whose invalidation arrived.
func TestSamplerFindsAForgottenInvalidation(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := newSource()
		src.put("good", "v1")
		src.put("bad", "v1")
		logs := &syncBuffer{}
		nw := gossiptest.New(61)
		ms := memCluster(t, nw, 2, src, func(c *Config) {
			c.Logger = slog.New(slog.NewTextHandler(logs, nil))
		})
		var gs []*Group[string]
		for _, m := range ms {
			g, err := NewGroup(m.n, "sampled", GroupConfig[string]{Loader: src, SampleEvery: 1, SampleBudget: 5})
			if err != nil {
				t.Fatal(err)
			}
			gs = append(gs, g)
		}
		g := gs[1]
		mustGet(t, g, "good")
		mustGet(t, g, "bad")
		ver := src.put("good", "v2")
		if err := gs[0].Invalidate(t.Context(), "good", ver, AckAll()); err != nil {
			t.Fatal(err)
		}
		src.put("bad", "v2") // behind the cache's back: no Invalidate
		start := time.Now()
		const run = 10 * time.Second
		for time.Since(start) < run {
			if got := mustGet(t, g, "bad"); got != "v1" {
				t.Fatalf("read %q: the test expects the forgotten write to be served stale", got)
			}
			mustGet(t, g, "good")
			time.Sleep(10 * time.Millisecond)
		}
		time.Sleep(ms[1].n.cfg.MaxStaleness + time.Second) // the last checks settle
		st := g.Stats().Sampler
		t.Logf("sampler after %v: %+v, nines %.2f", run, st, st.Nines())
		if st.BeyondBound == 0 {
			t.Fatal("the sampler did not report hits of a value superseded without an invalidation")
		}
		if limit := uint64(5*(run+ms[1].n.cfg.MaxStaleness+time.Second)/time.Second) + 1; st.Checks > limit {
			t.Errorf("%d checks in %v, over the budget of 5/s (%d)", st.Checks, run, limit)
		}
		if st.Checks < 20 {
			t.Errorf("only %d checks at 5/s over %v", st.Checks, run)
		}
		if st.Dropped == 0 {
			t.Error("every hit sampled at 5 checks/s, and none dropped: the budget did not bind")
		}
		if st.BeyondBound >= st.Checks {
			t.Errorf("every check (%d) beyond the bound: the invalidated key was reported too", st.Checks)
		}
		if st.Nines() <= 0 || st.HourChecks != st.Checks {
			t.Errorf("nines %.2f over %d checks in the hour (of %d)", st.Nines(), st.HourChecks, st.Checks)
		}
		if out := logs.String(); !strings.Contains(out, "key=bad") || strings.Contains(out, "key=good") {
			t.Errorf("the sampler's log does not name the bad key alone:\n%s", out)
		}
	})
}

// TestSamplerOffAndClockGroups: SampleEvery < 0 and ClockVersions groups
// check nothing.
func TestSamplerOffAndClockGroups(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := newSource()
		src.put("k", "v1")
		ms := memCluster(t, gossiptest.New(67), 1, src, nil)
		off, err := NewGroup(ms[0].n, "off", GroupConfig[string]{Loader: src, SampleEvery: -1})
		if err != nil {
			t.Fatal(err)
		}
		clock, err := NewGroup(ms[0].n, "clock", GroupConfig[string]{Loader: src, SampleEvery: 1, Versioning: ClockVersions})
		if err != nil {
			t.Fatal(err)
		}
		for range 100 {
			mustGet(t, off, "k")
			mustGet(t, clock, "k")
			time.Sleep(10 * time.Millisecond)
		}
		if a, b := off.Stats().Sampler, clock.Stats().Sampler; a.Checks+b.Checks+a.Dropped+b.Dropped != 0 {
			t.Errorf("sampler off: %+v; ClockVersions: %+v; want nothing", a, b)
		}
	})
}
