package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/nearcache/nearcache/bench"
)

// benchCommand defines the bench's flags and returns the function that runs it.
func benchCommand(stdout, stderr io.Writer) (*flag.FlagSet, func(context.Context) int) {
	fs := flag.NewFlagSet("nearcache-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: go run ./cmd/nearcache-bench [flags]\n\n"+
			"Runs the same seeded workloads against no cache, per-instance TTL caches,\n"+
			"Redis cache-aside, Redis client-side caching, groupcache and nearcache, and\n"+
			"prints throughput, latency, database load, stale reads and memory side by side.\n"+
			"The source of truth is an embedded SQLite database with --latency added per\n"+
			"query, or PostgreSQL through pgx with --source postgres://... (no latency added).\n"+
			"The Redis strategies need redis-server on PATH (make bench-deps).\n\nflags:\n")
		fs.PrintDefaults()
	}
	strategies := fs.String("strategies", strings.Join(bench.StrategyNames, ","), "comma-separated strategies to run")
	workloads := fs.String("workloads", "", "comma-separated workloads to run (\"\" = all: "+workloadNames()+")")
	scale := fs.Float64("scale", 1, "multiply every workload's duration by this")
	instances := fs.Int("instances", 4, "application instances per strategy")
	source := fs.String("source", "", "source of truth: \"\" = embedded SQLite; a postgres:// `DSN` = PostgreSQL through pgx\n(each run creates, seeds and drops a table nearcache_bench_<id>; no latency is added)")
	latency := fs.Duration("latency", time.Millisecond, "SQLite source only: latency added before every database query (0 = none)")
	valueSize := fs.Int("value-size", 100, "bytes per row")
	seed := fs.Int64("seed", 1, "workload seed: the same seed issues the same operations")
	ackAll := fs.Bool("ack-all", false, "nearcache writers wait for every node's ack (node.AckAll)")
	jsonOut := fs.String("json", "", "write the report as JSON to `FILE` (schema: bench/README.md)")
	plots := fs.String("plots", "", "write PNG plots into `DIR` (created if missing)")
	noProgress := fs.Bool("no-progress", false, "no progress bar on stderr")
	verbose := fs.Bool("verbose", false, "log the nodes' events to stderr")

	return fs, func(ctx context.Context) int {
		if *scale <= 0 || *instances < 1 || *latency < 0 || *valueSize < 1 {
			fmt.Fprintln(stderr, "nearcache-bench: --scale must be positive, --instances and --value-size at least 1, --latency not negative")
			return exitUsage
		}
		if *source != "" {
			if !strings.HasPrefix(*source, "postgres://") && !strings.HasPrefix(*source, "postgresql://") {
				fmt.Fprintln(stderr, "nearcache-bench: --source must be a postgres:// or postgresql:// DSN (or empty for SQLite)")
				return exitUsage
			}
			latencySet := false
			fs.Visit(func(f *flag.Flag) { latencySet = latencySet || f.Name == "latency" })
			if latencySet {
				fmt.Fprintln(stderr, "nearcache-bench: --latency applies only to the SQLite source; PostgreSQL has its own")
				return exitUsage
			}
		}
		cfg := bench.Config{
			SourceDSN:  *source,
			Strategies: strings.Split(*strategies, ","),
			Workloads:  bench.DefaultWorkloads(*scale),
			Instances:  *instances,
			Latency:    *latency,
			ValueSize:  *valueSize,
			Seed:       *seed,
			AckAll:     *ackAll,
		}
		if *latency == 0 {
			cfg.Latency = -1 // bench.Config: 0 = the default, negative = none
		}
		if *workloads != "" {
			var ws []bench.Workload
			for _, name := range strings.Split(*workloads, ",") {
				found := false
				for _, w := range cfg.Workloads {
					if w.Name == name {
						ws, found = append(ws, w), true
					}
				}
				if !found {
					fmt.Fprintf(stderr, "nearcache-bench: unknown workload %q (known: %s)\n", name, workloadNames())
					return exitUsage
				}
			}
			cfg.Workloads = ws
		}
		if !*noProgress {
			cfg.Progress = stderr
		}
		if *verbose {
			cfg.Logger = slog.New(slog.NewTextHandler(stderr, nil))
		}
		start := time.Now()
		rep, err := bench.Run(ctx, cfg)
		if rep != nil && len(rep.Results) > 0 {
			if terr := bench.WriteTable(stdout, rep); terr != nil {
				fmt.Fprintf(stderr, "nearcache-bench: %v\n", terr)
			}
			if *jsonOut != "" {
				if jerr := bench.WriteJSON(*jsonOut, rep); jerr != nil {
					fmt.Fprintf(stderr, "nearcache-bench: %v\n", jerr)
					return exitFailure
				}
			}
			if *plots != "" {
				if perr := writePlots(*plots, rep); perr != nil {
					fmt.Fprintf(stderr, "nearcache-bench: %v\n", perr)
					return exitFailure
				}
			}
		}
		switch {
		case err == nil:
			fmt.Fprintf(stdout, "\ndone in %v\n", time.Since(start).Round(time.Second))
			return exitOK
		case errors.Is(err, context.Canceled):
			fmt.Fprintf(stderr, "nearcache-bench: interrupted after %v; everything stopped\n", time.Since(start).Round(time.Millisecond))
			return exitInterrupted
		default:
			fmt.Fprintf(stderr, "nearcache-bench: %v\n", err)
			return exitFailure
		}
	}
}

func writePlots(dir string, rep *bench.Report) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	_, err := bench.WritePlots(dir, rep)
	return err
}

func workloadNames() string {
	var names []string
	for _, w := range bench.DefaultWorkloads(1) {
		names = append(names, w.Name)
	}
	return strings.Join(names, ",")
}
