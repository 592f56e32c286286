package node_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDeps enforces DESIGN.md §4: the library's import closure pulls only the
// modules the contract allows, and our packages import only downwards. Like
// go/build/deps_test.go, this table is a statement of policy: do not change it
// to fix a build.
func TestDeps(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list")
	}
	const mod = "github.com/nearcache/nearcache/"
	// Third-party modules the library (node and below) may pull in, directly or
	// through them (memberlist's and client_golang's own dependencies included).
	library := []string{
		"github.com/hashicorp/",   // memberlist and its own deps (go-msgpack, go-metrics, ...)
		"github.com/armon/",       // memberlist's go-metrics dep (older releases)
		"github.com/miekg/dns",    // memberlist
		"github.com/google/btree", // memberlist
		"github.com/sean-/seed",   // memberlist
		"github.com/dgraph-io/ristretto/v2",
		"github.com/cespare/xxhash/v2",  // ristretto
		"github.com/dustin/go-humanize", // ristretto
		"github.com/golang/groupcache",
		"golang.org/x/",
	}
	metricsExtra := []string{
		"github.com/prometheus/",
		"github.com/beorn7/perks",
		"github.com/munnerz/goautoneg",
		"google.golang.org/protobuf",
	}
	tests := []struct {
		pkg      string
		ours     []string // our packages it may depend on
		external []string
		forbid   []string // must not appear, even if a prefix above allows it
	}{
		{pkg: "local", forbid: []string{"github.com/hashicorp/", "github.com/prometheus/"}, external: library},
		{pkg: "loader", external: nil},
		{pkg: "gossip", forbid: []string{"github.com/dgraph-io/", "github.com/prometheus/"}, external: library},
		{pkg: "node", ours: []string{"local", "gossip", "node/internal/peer", "node/internal/ring", "node/internal/flight", "node/internal/trust"}, forbid: []string{"github.com/prometheus/"}, external: library},
		{pkg: "metrics", ours: []string{"node", "local", "gossip", "node/internal/peer", "node/internal/ring", "node/internal/flight", "node/internal/trust"}, external: append(append([]string{}, library...), metricsExtra...)},
	}
	for _, tt := range tests {
		t.Run(tt.pkg, func(t *testing.T) {
			out, err := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", mod+tt.pkg).CombinedOutput()
			if err != nil {
				t.Fatalf("go list: %v\n%s", err, out)
			}
			for _, v := range violations(tt.pkg, strings.Fields(string(out)), tt.ours, tt.external, tt.forbid) {
				t.Error(v)
			}
		})
	}
}

// TestDepsCatchesViolations shows the checker above is not vacuous: the
// policy rejects a layering inversion and a forbidden module.
func TestDepsCatchesViolations(t *testing.T) {
	const mod = "github.com/nearcache/nearcache/"
	deps := []string{mod + "node", mod + "local", mod + "metrics", "github.com/redis/go-redis/v9", "golang.org/x/sys/unix"}
	got := violations("node", deps, []string{"local", "gossip"}, []string{"golang.org/x/"}, nil)
	if len(got) != 2 {
		t.Fatalf("violations = %q, want 2 (metrics from node, go-redis)", got)
	}
}

func violations(pkg string, deps, ours, external, forbid []string) []string {
	const mod = "github.com/nearcache/nearcache/"
	var out []string
	for _, dep := range deps {
		if dep == mod+pkg {
			continue
		}
		if rest, ok := strings.CutPrefix(dep, mod); ok {
			if !hasPrefix(rest, ours) {
				out = append(out, pkg+" imports "+dep+": our packages import only downwards (DESIGN.md §4)")
			}
			continue
		}
		if hasPrefix(dep, forbid) || !hasPrefix(dep, external) {
			out = append(out, pkg+" depends on "+dep+", which DESIGN.md §4 does not allow")
		}
	}
	return out
}

func hasPrefix(s string, prefixes []string) bool {
	for _, p := range prefixes {
		if s == p || strings.HasPrefix(s, p) && (strings.HasSuffix(p, "/") || strings.HasPrefix(s[len(p):], "/")) {
			return true
		}
	}
	return false
}
