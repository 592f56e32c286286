// Command nearcache-bench runs the benchmark harness (package bench):
//
//	go run ./cmd/nearcache-bench [flags]
//	go run ./cmd/nearcache-bench --help
//
// It is a binary of its own so that the nearcache binary, and with it
// `go run ./cmd/nearcache demo`, does not compile the harness's dependencies
// (plotting, two Redis clients, pgx, groupcache).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// Exit codes, as cmd/nearcache's.
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

// run runs the bench with the flags in args and returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs, do := benchCommand(stdout, stderr)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage // the flag package has said why, and printed the usage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "nearcache-bench: unexpected arguments %q\n", fs.Args())
		return exitUsage
	}
	return do(ctx)
}
