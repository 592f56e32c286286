// Command nearcache is nearcache's binary:
//
//	nearcache demo [flags]   a 3-node cluster over embedded SQLite, live figures, a verdict
//	nearcache node [flags]   one production node: HTTP API, metrics, probes, status page
//	nearcache help [command]
//
// The benchmark harness is a binary of its own, go run ./cmd/nearcache-bench,
// so that this one (and a first go run ./cmd/nearcache demo) compiles only
// what the demo and the node need; TestDeps keeps it so.
//
// Each subcommand has its own flag set; the logic lives in internal packages,
// this file only wires flags to their Config.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/nearcache/nearcache/internal/demo"
)

// Exit codes.
const (
	exitOK          = 0
	exitFailure     = 1
	exitUsage       = 2
	exitInterrupted = 130 // 128 + SIGINT, as shells report it
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// command is one subcommand.
type command struct {
	name, summary string
	flags         func(stdout, stderr io.Writer) (*flag.FlagSet, func(ctx context.Context) int)
}

func commands() []command {
	return []command{
		{name: "demo", summary: "run a nearcache cluster and naive caches on one workload, and compare", flags: demoCommand},
		{name: "node", summary: "run one nearcache node with its HTTP API (see docs/deploy.md)", flags: nodeCommand},
		{name: "version", summary: "print the version, revision, Go version and platform (--json)", flags: versionCommand},
	}
}

// run runs the command line args and returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return exitUsage
	}
	switch args[0] {
	case "bench":
		benchMoved(stderr)
		return exitUsage
	case "help", "-h", "-help", "--help":
		if len(args) > 1 && args[1] == "bench" {
			benchMoved(stderr)
			return exitUsage
		}
		if len(args) > 1 {
			for _, c := range commands() {
				if c.name == args[1] {
					fs, _ := c.flags(stdout, stderr)
					fs.SetOutput(stdout)
					fs.Usage()
					return exitOK
				}
			}
			fmt.Fprintf(stderr, "nearcache: unknown command %q\n\n", args[1])
			usage(stderr)
			return exitUsage
		}
		usage(stdout)
		return exitOK
	}
	for _, c := range commands() {
		if c.name == args[0] {
			fs, do := c.flags(stdout, stderr)
			if err := fs.Parse(args[1:]); err != nil {
				if errors.Is(err, flag.ErrHelp) {
					return exitOK
				}
				return exitUsage // the flag package has said why, and printed the usage
			}
			if fs.NArg() > 0 {
				fmt.Fprintf(stderr, "nearcache %s: unexpected arguments %q\n", c.name, fs.Args())
				return exitUsage
			}
			return do(ctx)
		}
	}
	fmt.Fprintf(stderr, "nearcache: unknown command %q\n\n", args[0])
	usage(stderr)
	return exitUsage
}

// benchMoved answers the old `nearcache bench`: the bench has its own binary
// now, which keeps the harness's dependencies out of this one.
func benchMoved(w io.Writer) {
	fmt.Fprintln(w, "nearcache: the bench moved to its own binary: go run ./cmd/nearcache-bench [flags] (--help lists them)")
}

func usage(w io.Writer) {
	fmt.Fprintf(w, "usage: nearcache <command> [flags]\n\ncommands:\n")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-6s %s\n", c.name, c.summary)
	}
	fmt.Fprintf(w, "  %-6s %s\n", "help", "show this, or a command's flags: nearcache help demo")
	fmt.Fprintf(w, "\nThe benchmarks are a binary of their own: go run ./cmd/nearcache-bench --help\n")
}

// demoCommand defines the demo's flags and returns the function that runs it.
func demoCommand(stdout, stderr io.Writer) (*flag.FlagSet, func(context.Context) int) {
	d := demo.DefaultConfig()
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: nearcache demo [flags]\n\n"+
			"Runs an in-process nearcache cluster over embedded SQLite under a seeded Zipf\n"+
			"read/write workload, then the same workload on naive per-instance caches, and\n"+
			"compares stale reads, hit ratio, database loads and read latency.\n\nflags:\n")
		fs.PrintDefaults()
	}
	nodes := fs.Int("nodes", d.Nodes, "cluster size (and number of naive instances)")
	duration := fs.Duration("duration", d.Duration, "how long the nearcache workload runs")
	naiveDur := fs.Duration("naive-duration", 0, "how long the naive workload runs (0 = duration/3)")
	latency := fs.Duration("latency", d.Latency, "latency added before every database query (0 = none)")
	writeRatio := fs.Float64("write-ratio", d.WriteRatio, "share of operations that write, in (0, 1]")
	keys := fs.Int("keys", d.Keys, "rows in the database")
	workers := fs.Int("workers", d.Workers, "workers per node")
	ttl := fs.Duration("ttl", d.TTL, "TTL of the cached values (the naive caches' only way to see others' writes)")
	seed := fs.Uint64("seed", 1, "workload seed: the same seed issues the same operations")
	jsonOut := fs.String("json", "", "write the result as JSON to `FILE` (- = stdout; the human output then goes to stderr)")
	quiet := fs.Bool("quiet", false, "no live table, only the verdict")
	verbose := fs.Bool("verbose", false, "log the nodes' events to stderr")

	return fs, func(ctx context.Context) int {
		for _, c := range []struct {
			ok   bool
			what string
		}{
			{*nodes >= 1, "--nodes must be at least 1"},
			{*duration > 0, "--duration must be positive"},
			{*naiveDur >= 0, "--naive-duration must not be negative"},
			{*latency >= 0, "--latency must not be negative"},
			{*writeRatio > 0 && *writeRatio <= 1, "--write-ratio must be in (0, 1]"},
			{*keys >= 1, "--keys must be at least 1"},
			{*workers >= 1, "--workers must be at least 1"},
			{*ttl > 0, "--ttl must be positive"},
		} {
			if !c.ok {
				fmt.Fprintf(stderr, "nearcache demo: %s\n", c.what)
				return exitUsage
			}
		}
		cfg := demo.Config{
			Nodes:         *nodes,
			Duration:      *duration,
			NaiveDuration: *naiveDur,
			Latency:       *latency,
			WriteRatio:    *writeRatio,
			Keys:          *keys,
			Workers:       *workers,
			TTL:           *ttl,
			Seed:          *seed,
			Out:           stdout,
			Progress:      stderr,
			Quiet:         *quiet,
		}
		if *latency == 0 {
			cfg.Latency = -1 // demo.Config: 0 = the default, negative = none
		}
		if *jsonOut == "-" {
			cfg.Out = stderr // keep stdout pure JSON
		}
		if *verbose {
			cfg.Logger = slog.New(slog.NewTextHandler(stderr, nil))
		}
		start := time.Now()
		res, err := demo.Run(ctx, cfg)
		if *jsonOut != "" && (err == nil || errors.Is(err, demo.ErrStaleReads)) {
			if werr := writeJSON(*jsonOut, stdout, res); werr != nil {
				fmt.Fprintf(stderr, "nearcache demo: %v\n", werr)
				return exitFailure
			}
		}
		switch {
		case err == nil:
			return exitOK
		case errors.Is(err, context.Canceled):
			fmt.Fprintf(stderr, "nearcache demo: interrupted after %v; everything stopped and cleaned up\n", time.Since(start).Round(time.Millisecond))
			return exitInterrupted
		default:
			fmt.Fprintf(stderr, "nearcache demo: %v\n", err)
			return exitFailure
		}
	}
}

// writeJSON writes res to path, or to stdout when path is "-".
func writeJSON(path string, stdout io.Writer, res demo.Result) error {
	b, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return fmt.Errorf("encode result: %w", err)
	}
	b = append(b, '\n')
	if path == "-" {
		_, err = stdout.Write(b)
		return err
	}
	return os.WriteFile(path, b, 0o644)
}
