package main

import (
	"os/exec"
	"strings"
	"testing"
)

// heavy lists what the benchmark harness pulls in and the nearcache binary
// must not: a first `go run ./cmd/nearcache demo` compiles every package of
// the binary's closure, and these took most of that time (issue 9 item 7).
// The harness is cmd/nearcache-bench. Like node's TestDeps, this table is a
// statement of policy: do not change it to fix a build.
//
// pgx is not listed: `nearcache node --source postgres://...` reads
// PostgreSQL through pgx's database/sql driver (internal/server), so the
// binary needs it for the node, not for the bench.
var heavy = []string{
	"github.com/nearcache/nearcache/bench", // and bench/groupcachepeer
	"gonum.org/",                           // plotting
	"codeberg.org/go-fonts/",               // the plots' fonts
	"codeberg.org/go-latex/",               // the plots' labels
	"github.com/redis/go-redis/",
	"github.com/redis/rueidis",
	"github.com/golang/groupcache", // but see allowedHeavy
}

// allowedHeavy are packages under a heavy prefix that the library itself may
// use (DESIGN.md §4: groupcache's consistent hashing).
var allowedHeavy = []string{"github.com/golang/groupcache/consistenthash"}

// TestDeps checks that the nearcache binary's import closure holds none of
// the benchmark harness's dependencies.
func TestDeps(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list")
	}
	out, err := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	if bad := heavyDeps(strings.Fields(string(out))); len(bad) > 0 {
		t.Errorf("cmd/nearcache depends on %d packages of the bench's, which belong in cmd/nearcache-bench:\n%s",
			len(bad), strings.Join(bad, "\n"))
	}
}

// TestDepsCatchesHeavy shows the check above is not vacuous.
func TestDepsCatchesHeavy(t *testing.T) {
	deps := []string{
		"github.com/nearcache/nearcache/node",
		"github.com/nearcache/nearcache/bench",
		"github.com/nearcache/nearcache/bench/groupcachepeer",
		"github.com/nearcache/nearcache/benchmarks", // not the bench: a longer name
		"gonum.org/v1/plot",
		"github.com/redis/go-redis/v9",
		"github.com/redis/rueidis",
		"github.com/golang/groupcache",
		"github.com/golang/groupcache/consistenthash",
		"github.com/jackc/pgx/v5/stdlib",
	}
	got := heavyDeps(deps)
	want := []string{
		"github.com/nearcache/nearcache/bench",
		"github.com/nearcache/nearcache/bench/groupcachepeer",
		"gonum.org/v1/plot",
		"github.com/redis/go-redis/v9",
		"github.com/redis/rueidis",
		"github.com/golang/groupcache",
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("heavyDeps = %q, want %q", got, want)
	}
}

// heavyDeps returns the packages of deps that match heavy.
func heavyDeps(deps []string) []string {
	var out []string
	for _, dep := range deps {
		if matchesAny(dep, allowedHeavy) {
			continue
		}
		if matchesAny(dep, heavy) {
			out = append(out, dep)
		}
	}
	return out
}

// matchesAny reports whether pkg is one of prefixes, or under one: a prefix
// ending in "/" matches anything under it, another matches itself and its
// subpackages.
func matchesAny(pkg string, prefixes []string) bool {
	for _, p := range prefixes {
		if strings.HasSuffix(p, "/") && strings.HasPrefix(pkg, p) ||
			pkg == p || strings.HasPrefix(pkg, p+"/") {
			return true
		}
	}
	return false
}
