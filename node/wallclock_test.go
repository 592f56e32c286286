package node

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// wallClockUses lists every place the library reads the wall clock as a
// number, and why it may. Everything else (TTLs, floor and tag retention,
// the trust lease, timers, timeouts) runs on the monotonic clock, so a
// wall-clock step (NTP, a restored VM, `date -s`) changes nothing there.
var wallClockUses = map[string]string{
	"gossip/cluster.go:Start":                  "incarnation = start time; a step back across a restart is outgrown (TestRestartAfterClockStepBack)",
	"gossip/publish.go:publish":                "SentAt, for the propagation metric only",
	"node/clock.go:wallNow":                    "ClockVersions stamps are wall clock by design, bounded by MaxClockSkew; the HLC never goes back",
	"node/node.go:Invalidations":               "propagation metric from SentAt (meaningful on synced clocks only)",
	"node/progress.go:Progress":                "a feed's progress is a time as of which the log was applied: wall clock by design (G9 assumes clocks within MaxClockSkew)",
	"node/progress.go:heardProgress":           "progress from beyond MaxClockSkew in the future is not believed",
	"node/progress.go:logFresh":                "G9: the feed's progress is younger than MaxStaleness, on wall clocks within MaxClockSkew",
	"node/internal/peer/client.go:exchange":    "request timestamp for the replay window (peer MaxSkew)",
	"node/internal/peer/batch.go:exchangeMany": "batch request timestamp for the replay window (peer MaxSkew)",
	"node/internal/peer/server.go:refuse":      "replay window check against the request timestamp",
}

// TestWallClockOnlyWhereAllowed parses the library's sources and fails on any
// wall-clock reading (x.UnixNano(), x.Unix(), x.UnixMilli(), time.Unix...)
// not listed in wallClockUses, and on a listed use that no longer exists.
// Catches: TTLs or retention computed from Unix time again (a clock step
// would expire every entry at once, or keep one past its TTL).
func TestWallClockOnlyWhereAllowed(t *testing.T) {
	found := map[string]bool{}
	fset := token.NewFileSet()
	for _, root := range []string{"../gossip", "../local", "."} {
		err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() && (strings.HasSuffix(path, "gossiptest") || strings.HasSuffix(path, "testdata")) {
				return filepath.SkipDir
			}
			if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
				return nil
			}
			f, err := parser.ParseFile(fset, path, nil, 0)
			if err != nil {
				return err
			}
			rel := filepath.ToSlash(filepath.Clean(filepath.Join("node", path)))
			for _, decl := range f.Decls {
				fd, ok := decl.(*ast.FuncDecl)
				if !ok || fd.Body == nil {
					continue
				}
				ast.Inspect(fd.Body, func(n ast.Node) bool {
					call, ok := n.(*ast.CallExpr)
					if !ok {
						return true
					}
					sel, ok := call.Fun.(*ast.SelectorExpr)
					if !ok {
						return true
					}
					switch sel.Sel.Name {
					case "UnixNano", "Unix", "UnixMilli", "UnixMicro":
						found[rel+":"+fd.Name.Name] = true
					}
					return true
				})
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	var keys []string
	for k := range found {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if _, ok := wallClockUses[k]; !ok {
			t.Errorf("%s reads the wall clock; use the monotonic clock (time.Since, Cache.Now) or list it with a reason in wallClockUses", k)
		}
	}
	for k := range wallClockUses {
		if !found[k] {
			t.Errorf("wallClockUses lists %s, which no longer reads the wall clock: remove it", k)
		}
	}
}
