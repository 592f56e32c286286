package demo

import (
	"context"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nearcache/nearcache/internal/hist"
)

// Zipf parameters of the key popularity: key 0 is the hottest. With s = 1.1
// and 1000 keys the hottest key draws about a sixth of the operations.
const (
	zipfS = 1.1
	zipfV = 1
)

// system is what a workload runs against: instances of a cache over the
// source, all safe for concurrent use.
type system interface {
	size() int
	// read returns key's item as instance i serves it.
	read(ctx context.Context, i int, key string) (Item, error)
	// write commits a new version of key through instance i and returns it
	// once the instance's invalidation returned.
	write(ctx context.Context, i int, key string) (uint64, error)
	// live returns instance i's figures for the live table.
	live(i int) liveRow
}

// workerStats are one worker's counters, read by the live table meanwhile.
type workerStats struct {
	reads, stale, readErrors, writes, writeErrors atomic.Uint64
	latency                                       hist.Concurrent // read latency
}

// workload runs one phase's workers and judges every read.
type workload struct {
	cfg     Config
	sys     system
	tr      *tracker
	keys    []string
	workers [][]*workerStats // [instance][worker]
	late    []atomic.Uint64  // per instance: stale reads found by the late check
	gaps    atomic.Uint64    // late checks that may have missed reads

	// errMu guards firstErr.
	errMu    sync.Mutex
	firstErr error
}

func newWorkload(cfg Config, sys system) *workload {
	w := &workload{cfg: cfg, sys: sys, tr: newTracker(cfg.Keys, time.Now()), keys: make([]string, cfg.Keys)}
	for i := range w.keys {
		w.keys[i] = keyName(i)
	}
	w.late = make([]atomic.Uint64, sys.size())
	w.workers = make([][]*workerStats, sys.size())
	for i := range w.workers {
		w.workers[i] = make([]*workerStats, cfg.Workers)
		for j := range w.workers[i] {
			w.workers[i][j] = &workerStats{}
		}
	}
	return w
}

// run runs the workers until ctx ends, calling tick once a second meanwhile,
// and returns once every worker has stopped.
func (w *workload) run(ctx context.Context, tick func(elapsed time.Duration)) {
	var wg sync.WaitGroup
	for i := range w.workers {
		for j := range w.workers[i] {
			wg.Go(func() { w.work(ctx, i, j) })
		}
	}
	start := time.Now()
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for done := false; !done; {
		select {
		case <-ctx.Done():
			done = true
		case <-t.C:
			tick(time.Since(start).Round(time.Second))
		}
	}
	wg.Wait()
}

// work is one worker: a seeded stream of reads and writes on Zipf keys. The
// same seed, instance and worker index give the same stream in every phase.
func (w *workload) work(ctx context.Context, i, j int) {
	ws := w.workers[i][j]
	rng := rand.New(rand.NewPCG(w.cfg.Seed, uint64(i*w.cfg.Workers+j)))
	zipf := rand.NewZipf(rng, zipfS, zipfV, uint64(len(w.keys)-1))
	done := ctx.Done()
	for {
		select {
		case <-done:
			return
		default:
		}
		k := int(zipf.Uint64())
		if rng.Float64() < w.cfg.WriteRatio {
			v, err := w.sys.write(ctx, i, w.keys[k])
			if err != nil {
				if ctx.Err() == nil {
					ws.writeErrors.Add(1)
					w.noteErr(err)
				}
				continue
			}
			late, gaps := w.tr.invalidated(k, v, time.Now())
			for _, inst := range late {
				w.late[inst].Add(1)
			}
			w.gaps.Add(uint64(gaps))
			ws.writes.Add(1)
			continue
		}
		start := time.Now()
		it, err := w.sys.read(ctx, i, w.keys[k])
		took := time.Since(start)
		if err != nil {
			if ctx.Err() == nil {
				ws.readErrors.Add(1)
				w.noteErr(err)
			}
			continue
		}
		ws.reads.Add(1)
		ws.latency.Record(took)
		if w.tr.stale(k, i, start, it.Version) {
			ws.stale.Add(1)
		}
	}
}

func (w *workload) noteErr(err error) {
	w.errMu.Lock()
	defer w.errMu.Unlock()
	if w.firstErr == nil {
		w.firstErr = err
	}
}

// instanceTotals sums instance i's workers.
func (w *workload) instanceTotals(i int) (reads, stale, readErrs, writes, writeErrs uint64) {
	for _, ws := range w.workers[i] {
		reads += ws.reads.Load()
		stale += ws.stale.Load()
		readErrs += ws.readErrors.Load()
		writes += ws.writes.Load()
		writeErrs += ws.writeErrors.Load()
	}
	stale += w.late[i].Load()
	return
}

// latency merges every worker's read latencies.
func (w *workload) latency() *hist.Concurrent {
	h := &hist.Concurrent{}
	for i := range w.workers {
		for _, ws := range w.workers[i] {
			h.Merge(&ws.latency)
		}
	}
	return h
}
