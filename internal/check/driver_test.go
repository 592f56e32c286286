package check

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

type testFault string

// fakeCluster is a backend whose nodes answer every read with the source's
// current version, except a node that lags (it answers version 0) while a
// fault holds it. Faults: "lag-N" makes node N lag for as long as the test's
// heal channel says; "fail" fails the injection.
type fakeCluster struct {
	rec *Recorder
	n   int

	// mu guards the fields below.
	mu       sync.Mutex
	ver      uint64
	rows     map[string]uint64
	lagging  int // -1 = none
	injected []testFault
	healAt   map[testFault]time.Duration // a lag heals this long after the fault's injection returned
}

func (c *fakeCluster) nodes() int                { return c.n }
func (c *fakeCluster) pickUp(rng *rand.Rand) int { return rng.IntN(c.n) }

func (c *fakeCluster) read(ctx context.Context, i int, key string) (uint64, error) {
	start := c.rec.Now()
	c.mu.Lock()
	v := c.rows[key]
	if c.lagging == i {
		v = 0
	}
	c.mu.Unlock()
	if ctx.Err() != nil {
		return 0, ctx.Err()
	}
	c.rec.Read("n"+strconv.Itoa(i), key, start, c.rec.Now(), v, nil)
	return v, nil
}

func (c *fakeCluster) write(_ context.Context, i int, key string, _, _ int, _ *rand.Rand) error {
	c.mu.Lock()
	c.ver++
	v := c.ver
	c.rows[key] = v
	c.mu.Unlock()
	now := c.rec.Now()
	c.rec.Write("n"+strconv.Itoa(i), key, v, now, now, now, false, nil)
	return nil
}

func (c *fakeCluster) trust(_ context.Context, i int) (string, bool, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return "n" + strconv.Itoa(i), c.lagging != i, true
}

func (c *fakeCluster) ready(_ context.Context, i int) (string, string) {
	return "n" + strconv.Itoa(i), ""
}

func (c *fakeCluster) source(_ context.Context, key string) (uint64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.rows[key], nil
}

func (c *fakeCluster) inject(ctx context.Context, f testFault) error {
	c.mu.Lock()
	c.injected = append(c.injected, f)
	c.mu.Unlock()
	if f == "fail" {
		return errors.New("injection failed")
	}
	start := c.rec.Now()
	if err := sleepCtx(ctx, time.Second); err != nil {
		return err
	}
	if i, ok := strings.CutPrefix(string(f), "lag-"); ok {
		n, _ := strconv.Atoi(i)
		c.mu.Lock()
		c.lagging = n
		c.mu.Unlock()
		time.AfterFunc(c.healAt[f], func() {
			c.mu.Lock()
			c.lagging = -1
			c.mu.Unlock()
		})
	}
	c.rec.Add(Event{Kind: KindFault, Fault: string(f), Start: start, End: c.rec.Now()})
	return nil
}

func runFake(t *testing.T, faults []testFault, heal map[testFault]time.Duration) (Report, *fakeCluster, error) {
	t.Helper()
	rec := NewRecorder()
	c := &fakeCluster{rec: rec, n: 3, rows: map[string]uint64{}, lagging: -1, healAt: heal}
	keys := []string{"a", "b", "c"}
	for _, k := range keys {
		c.ver++
		c.rows[k] = c.ver
	}
	p := plan[testFault]{
		params:        Params{Seed: 7, MaxStaleness: time.Second, Slack: 500 * time.Millisecond},
		faults:        faults,
		calm:          time.Second,
		converge:      5 * time.Second,
		keys:          keys,
		hotKeys:       1,
		nodeReaders:   1,
		randomReaders: 2,
		readPause:     10 * time.Millisecond,
		writers:       2,
		writePause:    func(*rand.Rand, error) time.Duration { return 5 * time.Millisecond },
		trustPoll:     20 * time.Millisecond,
		convergePoll:  20 * time.Millisecond,
		logger:        slog.New(slog.DiscardHandler),
	}
	var wg sync.WaitGroup
	r, _, err := drive(t.Context(), p, rec, &wg, c)
	return r, c, err
}

// TestDriveSchedule runs drive (in a synctest bubble: fake time) against a
// fake back end: every fault in order, each followed by a convergence
// record, which reports a node that still diverges at its deadline.
// Scheduling-dependent only through synctest's fake clock; passes
//
//	timeout 300 sh -c 'yes >/dev/null & yes >/dev/null & wait' &
//	go test -race -count=50 -run '^TestDrive' ./internal/check/
func TestDriveSchedule(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		heal := map[testFault]time.Duration{"lag-1": 2 * time.Second, "lag-2": time.Minute}
		r, c, err := runFake(t, []testFault{"calm", "lag-1", "lag-2"}, heal)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(c.injected, []testFault{"calm", "lag-1", "lag-2"}) {
			t.Errorf("injected %v", c.injected)
		}
		if len(r.Converge) != 3 {
			t.Fatalf("converge records %+v, want 3", r.Converge)
		}
		for i, want := range []string{"calm", "lag-1", "lag-2"} {
			if r.Converge[i].Fault != want {
				t.Errorf("converge %d is for %q, want %q", i, r.Converge[i].Fault, want)
			}
		}
		if r.Converge[0].Err != "" || r.Converge[1].Err != "" {
			t.Errorf("converge errors %q %q, want none", r.Converge[0].Err, r.Converge[1].Err)
		}
		if took := r.Converge[1].Took; took < 2*time.Second {
			t.Errorf("lag-1 converged after %v, before it healed (2s)", took)
		}
		if !strings.Contains(r.Converge[2].Err, "n2: read") {
			t.Errorf("lag-2 converge error %q, want node n2's read", r.Converge[2].Err)
		}
		if r.Reads == 0 || r.Writes == 0 || r.TrustChanges < 3 {
			t.Errorf("%d reads, %d writes, %d trust changes", r.Reads, r.Writes, r.TrustChanges)
		}
	})
}

// TestDriveFaultError: a fault that fails ends the schedule, and drive
// returns its error.
func TestDriveFaultError(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r, c, err := runFake(t, []testFault{"calm", "fail", "calm"}, nil)
		if err == nil || err.Error() != "injection failed" {
			t.Fatalf("err = %v, want the injection's", err)
		}
		if !slices.Equal(c.injected, []testFault{"calm", "fail"}) {
			t.Errorf("injected %v, want the schedule cut at the failure", c.injected)
		}
		if len(r.Converge) != 1 {
			t.Errorf("converge records %+v, want 1", r.Converge)
		}
	})
}
