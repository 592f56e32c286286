package demo

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/nearcache/nearcache/internal/hist"
)

// Run runs the demo: cfg.Duration of the workload on a nearcache cluster,
// then cfg.NaiveDuration of the same seeded workload on naive per-instance
// caches, each over a fresh SQLite database in a temporary directory. It
// writes the live table (unless cfg.Quiet) and the verdict to cfg.Out.
//
// It returns an error if the demo could not run, if ctx ended first (the
// error wraps ctx's, and the Result holds what was measured), or if nearcache
// served a stale read. Everything Run started is closed and removed before it
// returns.
func Run(ctx context.Context, cfg Config) (Result, error) {
	if err := cfg.validate(); err != nil {
		return Result{}, err
	}
	cfg = cfg.withDefaults()
	res := Result{Config: resultConfig(cfg)}
	dir, err := os.MkdirTemp("", "nearcache-demo-")
	if err != nil {
		return res, fmt.Errorf("demo: %w", err)
	}
	defer os.RemoveAll(dir)

	res.Nearcache, err = runNearcache(ctx, cfg, dir)
	if err != nil {
		return res, err
	}
	if err := interrupted(ctx); err != nil {
		return res, err
	}
	res.Naive, err = runNaive(ctx, cfg, dir)
	if err != nil {
		return res, err
	}
	if err := interrupted(ctx); err != nil {
		return res, err
	}
	printVerdict(cfg.Out, cfg, res)
	if res.Nearcache.StaleReads > 0 {
		return res, fmt.Errorf("%w: %d of %d", ErrStaleReads, res.Nearcache.StaleReads, res.Nearcache.Reads)
	}
	return res, nil
}

// ErrStaleReads is returned by [Run] when nearcache served a stale read: the
// demo's claim failed. The Result is complete.
var ErrStaleReads = errors.New("demo: nearcache served stale reads")

func interrupted(ctx context.Context) error {
	if ctx.Err() != nil {
		return fmt.Errorf("demo: interrupted: %w", ctx.Err())
	}
	return nil
}

func runNearcache(ctx context.Context, cfg Config, dir string) (_ PhaseResult, err error) {
	progress(cfg, "seeding %d rows into SQLite (nearcache.db)", cfg.Keys)
	src, err := openSource(ctx, dir, "nearcache.db", cfg.Keys, cfg.Nodes, cfg.Latency)
	if err != nil {
		return PhaseResult{}, err
	}
	defer src.close()
	fmt.Fprintf(cfg.Out, "nearcache: starting %d nodes on 127.0.0.1 over SQLite (%d rows, +%v per query)...\n",
		cfg.Nodes, cfg.Keys, max(cfg.Latency, 0))
	cl, err := startCluster(ctx, cfg, src)
	if err != nil {
		return PhaseResult{}, err
	}
	defer func() {
		if cerr := cl.close(); cerr != nil && err == nil {
			err = fmt.Errorf("demo: close: %w", cerr)
		}
	}()
	fmt.Fprintf(cfg.Out, "nearcache: cluster ready; %v of %d workers per node, %.0f%% writes (AckAll)\n",
		cfg.Duration, cfg.Workers, 100*cfg.WriteRatio)
	w, elapsed := runWorkload(ctx, cfg, cfg.Duration, "nearcache", cl)
	rows := liveRows(cl)
	prop := &hist.Concurrent{}
	for _, o := range cl.obs {
		prop.Merge(&o.propagation)
	}
	p := summarize(w, rows, elapsed, src.totalLoads(), prop)
	return p, phaseErr("nearcache", w, p)
}

func runNaive(ctx context.Context, cfg Config, dir string) (PhaseResult, error) {
	progress(cfg, "seeding %d rows into SQLite (naive.db)", cfg.Keys)
	src, err := openSource(ctx, dir, "naive.db", cfg.Keys, cfg.Nodes, cfg.Latency)
	if err != nil {
		return PhaseResult{}, err
	}
	defer src.close()
	fmt.Fprintf(cfg.Out, "\nnaive: %d per-instance caches (TTL %v, no cross-instance invalidation); %v of the same workload\n",
		cfg.Nodes, cfg.TTL, cfg.NaiveDuration)
	nv := newNaive(src, cfg.Nodes, cfg.TTL)
	w, elapsed := runWorkload(ctx, cfg, cfg.NaiveDuration, "naive", nv)
	p := summarize(w, liveRows(nv), elapsed, src.totalLoads(), nil)
	return p, phaseErr("naive", w, p)
}

// progress writes one line to cfg.Progress before a slow start-up step.
func progress(cfg Config, format string, args ...any) {
	fmt.Fprintf(cfg.Progress, "nearcache demo: "+format+"...\n", args...)
}

// runWorkload runs one phase for d (or until ctx ends), printing the live
// table once a second unless cfg.Quiet.
func runWorkload(ctx context.Context, cfg Config, d time.Duration, phase string, sys system) (*workload, time.Duration) {
	w := newWorkload(cfg, sys)
	pctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	start := time.Now()
	w.run(pctx, func(elapsed time.Duration) {
		if !cfg.Quiet {
			printLive(cfg.Out, phase, elapsed, w, liveRows(sys))
		}
	})
	return w, time.Since(start)
}

func liveRows(sys system) []liveRow {
	rows := make([]liveRow, sys.size())
	for i := range rows {
		rows[i] = sys.live(i)
	}
	return rows
}

// phaseErr fails a phase that could not read at all: its figures would
// mean nothing.
func phaseErr(phase string, w *workload, p PhaseResult) error {
	if p.Reads > 0 || p.ReadErrors == 0 {
		return nil
	}
	w.errMu.Lock()
	defer w.errMu.Unlock()
	return fmt.Errorf("demo: %s: no read succeeded (%d failed; first: %w)", phase, p.ReadErrors, w.firstErr)
}
