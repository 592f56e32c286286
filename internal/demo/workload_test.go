package demo

import (
	"context"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// fakeSystem is a store of per-key versions with instances that may lag:
// instance i serves the version it saw last unless fresh is true, in which
// case every read sees the latest write.
type fakeSystem struct {
	n     int
	fresh bool

	// mu guards latest and seen.
	mu     sync.Mutex
	latest map[string]uint64
	seen   []map[string]uint64 // per instance: the version it caches
}

func newFakeSystem(n int, fresh bool) *fakeSystem {
	s := &fakeSystem{n: n, fresh: fresh, latest: map[string]uint64{}, seen: make([]map[string]uint64, n)}
	for i := range s.seen {
		s.seen[i] = map[string]uint64{}
	}
	return s
}

func (s *fakeSystem) size() int { return s.n }

func (s *fakeSystem) read(ctx context.Context, i int, key string) (Item, error) {
	time.Sleep(time.Millisecond) // lets the bubble's clock move
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.seen[i][key]
	if !ok || s.fresh {
		v = max(s.latest[key], 1)
		s.seen[i][key] = v
	}
	return Item{Version: v}, nil
}

func (s *fakeSystem) write(ctx context.Context, i int, key string) (uint64, error) {
	time.Sleep(time.Millisecond)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.latest[key] = max(s.latest[key], 1) + 1
	s.seen[i][key] = s.latest[key] // the writer's own instance is fresh
	return s.latest[key], nil
}

func (s *fakeSystem) live(i int) liveRow { return liveRow{name: "f"} }

// TestWorkloadJudgesReads runs the workload against systems whose staleness
// is known: one that is always fresh must get no stale read, one whose
// instances never see each other's writes must get some.
func TestWorkloadJudgesReads(t *testing.T) {
	tests := []struct {
		name      string
		fresh     bool
		wantStale bool
	}{
		{name: "fresh system", fresh: true, wantStale: false},
		{name: "lagging system", fresh: false, wantStale: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				cfg := Config{Nodes: 3, Workers: 2, Keys: 10, WriteRatio: 0.2, Seed: 1}.withDefaults()
				sys := newFakeSystem(3, tt.fresh)
				w := newWorkload(cfg, sys)
				ctx, cancel := context.WithTimeout(t.Context(), 3*time.Second)
				defer cancel()
				ticks := 0
				w.run(ctx, func(time.Duration) { ticks++ })
				p := summarize(w, liveRows(sys), 3*time.Second, 0, nil)
				if p.Reads == 0 || p.Writes == 0 {
					t.Fatalf("reads/writes = %d/%d, want both > 0", p.Reads, p.Writes)
				}
				if got := p.StaleReads > 0; got != tt.wantStale {
					t.Errorf("stale reads = %d of %d, want any: %v", p.StaleReads, p.Reads, tt.wantStale)
				}
				if ticks < 2 {
					t.Errorf("live table ticked %d times in 3s, want >= 2", ticks)
				}
			})
		})
	}
}

// TestWorkloadSeeded checks that a seed fixes the operations: the same seed
// gives the same key sequence, another seed another.
func TestWorkloadSeeded(t *testing.T) {
	keys := func(seed uint64) []string {
		var got []string
		synctest.Test(t, func(t *testing.T) {
			cfg := Config{Nodes: 1, Workers: 1, Keys: 100, WriteRatio: 0.5, Seed: seed}.withDefaults()
			rec := &recordingSystem{fakeSystem: newFakeSystem(1, true)}
			w := newWorkload(cfg, rec)
			ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
			defer cancel()
			w.run(ctx, func(time.Duration) {})
			got = rec.ops
		})
		return got
	}
	a, b, c := keys(1), keys(1), keys(2)
	if len(a) < 10 {
		t.Fatalf("only %d operations ran", len(a))
	}
	n := min(len(a), len(b), len(c))
	if !equal(a[:n], b[:n]) {
		t.Errorf("seed 1 twice gave different operations:\n%v\n%v", a[:n], b[:n])
	}
	if equal(a[:n], c[:n]) {
		t.Errorf("seeds 1 and 2 gave the same operations: %v", a[:n])
	}
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// recordingSystem records the operations of a single worker.
type recordingSystem struct {
	*fakeSystem
	ops []string // only one worker: no lock needed beyond fakeSystem's
}

func (r *recordingSystem) read(ctx context.Context, i int, key string) (Item, error) {
	r.ops = append(r.ops, "r "+key)
	return r.fakeSystem.read(ctx, i, key)
}

func (r *recordingSystem) write(ctx context.Context, i int, key string) (uint64, error) {
	r.ops = append(r.ops, "w "+key)
	return r.fakeSystem.write(ctx, i, key)
}
