package bench

import (
	"errors"
	"fmt"
	"math/rand"
	"time"
)

// Workload is one reproducible load: the key space, how keys are picked, the
// share of writes, the cache TTL and how long to run.
type Workload struct {
	Name string
	// Keys is the number of rows in the source; 0 = 100000.
	Keys int
	// HotKeys > 0 picks keys uniformly among the first HotKeys (a hot-key
	// storm); 0 picks them by Zipf over all Keys.
	HotKeys int
	// ZipfS is the Zipf exponent (> 1); 0 = 1.1.
	ZipfS float64
	// WriteFrac is the share of operations that are writes, in [0, 1).
	WriteFrac float64
	// TTL of every cache entry; 0 = none where the strategy allows it
	// (Redis strategies then use an hour).
	TTL time.Duration
	// Warmup is run before measuring and not counted; 0 = none (a cold start).
	Warmup time.Duration
	// Duration is the measured time; required.
	Duration time.Duration
	// Workers is the number of closed-loop goroutines per instance; 0 = 4.
	Workers int
	// Churn stops and restarts the last instance halfway through the
	// measured time (its workers wait meanwhile); strategies that cannot
	// restart one instance (groupcache here) run without it.
	Churn bool
}

func (w Workload) validate() error {
	switch {
	case w.Name == "":
		return errors.New("bench: Workload.Name is required")
	case w.Duration <= 0:
		return fmt.Errorf("bench: workload %s: Duration must be positive", w.Name)
	case w.Keys < 0, w.HotKeys < 0, w.Workers < 0, w.TTL < 0, w.Warmup < 0:
		return fmt.Errorf("bench: workload %s: counts and durations must not be negative", w.Name)
	case w.ZipfS != 0 && w.ZipfS <= 1:
		return fmt.Errorf("bench: workload %s: ZipfS must exceed 1", w.Name)
	case w.WriteFrac < 0 || w.WriteFrac >= 1:
		return fmt.Errorf("bench: workload %s: WriteFrac must be in [0, 1)", w.Name)
	}
	return nil
}

func (w Workload) withDefaults() Workload {
	if w.Keys == 0 {
		w.Keys = 100000
	}
	if w.HotKeys > w.Keys {
		w.HotKeys = w.Keys
	}
	if w.ZipfS == 0 {
		w.ZipfS = 1.1
	}
	if w.Workers == 0 {
		w.Workers = 4
	}
	return w
}

// DefaultWorkloads returns the standard set, scaled by scale (1 = the
// default durations, about 25 s per strategy).
func DefaultWorkloads(scale float64) []Workload {
	d := func(x time.Duration) time.Duration { return time.Duration(float64(x) * scale) }
	return []Workload{
		{Name: "zipf-1pct-writes", WriteFrac: 0.01, TTL: 30 * time.Second, Warmup: d(time.Second), Duration: d(6 * time.Second)},
		{Name: "zipf-10pct-writes", WriteFrac: 0.10, TTL: 30 * time.Second, Warmup: d(time.Second), Duration: d(6 * time.Second)},
		{Name: "hotkey-expiry-storm", Keys: 1000, HotKeys: 8, TTL: 100 * time.Millisecond, Warmup: d(500 * time.Millisecond), Duration: d(4 * time.Second), Workers: 16},
		{Name: "cold-start", TTL: 30 * time.Second, Duration: d(3 * time.Second)},
		{Name: "node-churn", WriteFrac: 0.01, TTL: 30 * time.Second, Warmup: d(time.Second), Duration: d(6 * time.Second), Churn: true},
	}
}

// picker chooses keys for one worker.
type picker struct {
	rng  *rand.Rand
	zipf *rand.Zipf // nil for hot keys
	hot  int
}

func newPicker(w Workload, seed int64) *picker {
	rng := rand.New(rand.NewSource(seed))
	p := &picker{rng: rng, hot: w.HotKeys}
	if w.HotKeys == 0 {
		p.zipf = rand.NewZipf(rng, w.ZipfS, 1, uint64(w.Keys-1))
	}
	return p
}

// next returns the index of the next key.
func (p *picker) next() int {
	if p.zipf == nil {
		return p.rng.Intn(p.hot)
	}
	return int(p.zipf.Uint64())
}

// write decides whether the next operation is a write.
func (p *picker) write(frac float64) bool { return frac > 0 && p.rng.Float64() < frac }
