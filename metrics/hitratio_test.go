package metrics

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nearcache/nearcache/node"
	"github.com/prometheus/client_golang/prometheus"
)

// lagSource is the source of truth: per key a value's version, and how many
// more loads still return the version before it (a lagging replica behind
// the invalidation: those loads come back below the key's floor, and the
// node refuses them).
type lagSource struct {
	mu   sync.Mutex
	ver  map[string]uint64
	lag  map[string]int
	hits int // loads that returned a lagging version
}

type notFoundError struct{}

func (notFoundError) Error() string  { return "not found" }
func (notFoundError) NotFound() bool { return true }

func (s *lagSource) Load(ctx context.Context, key string) (string, uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.ver[key]
	if !ok {
		return "", 0, notFoundError{}
	}
	if s.lag[key] > 0 {
		s.lag[key]--
		s.hits++
		v--
	}
	return fmt.Sprint(v), v, nil
}

// write commits a new version of key that the next lag loads do not see yet.
func (s *lagSource) write(key string, lag int) uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ver[key]++
	s.lag[key] = lag
	return s.ver[key]
}

// lockedBuffer is a bytes.Buffer safe for concurrent writers.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// snapshotObserver is a Metrics that also keeps the node.Stats snapshot its
// last scrape exported, so the test compares figures of one instant.
type snapshotObserver struct {
	*Metrics
	mu   sync.Mutex
	last node.Stats
}

func (o *snapshotObserver) Attach(stats func() node.Stats) {
	o.Metrics.Attach(func() node.Stats {
		s := stats()
		o.mu.Lock()
		o.last = s
		o.mu.Unlock()
		return s
	})
}

func (o *snapshotObserver) snapshot() node.Stats {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.last
}

// statusHitRatio is the status page's figure (internal/server/status.go,
// groupStatus.HitRatio): hits / (hits + misses), none before the first
// plain read. Written out here because internal/server imports this package.
func statusHitRatio(g node.GroupStats) (float64, bool) {
	if total := g.Hits + g.Misses; total > 0 {
		return float64(g.Hits) / float64(total), true
	}
	return 0, false
}

// hitRatioExpr returns the expression of the dashboard's hit ratio panel.
func hitRatioExpr(t *testing.T) string {
	t.Helper()
	raw, err := os.ReadFile(dashboardPath)
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Panels []struct {
			Title   string
			Targets []struct{ Expr string }
		}
	}
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatal(err)
	}
	for _, p := range d.Panels {
		if p.Title == "Hit ratio by group" {
			if len(p.Targets) != 1 {
				t.Fatalf("hit ratio panel has %d targets, want 1", len(p.Targets))
			}
			return p.Targets[0].Expr
		}
	}
	t.Fatal("no panel titled \"Hit ratio by group\"")
	return ""
}

// TestHitRatioPanelMatchesStatusPage runs a 3-node cluster on 127.0.0.1 with
// three groups under a mix of hits, misses (owner fills, not-found keys),
// authoritative reads and loads refused below a floor (each refused several
// times within one Get), scrapes every node's collector before and after,
// evaluates the dashboard's hit ratio query over the two scrapes, and
// compares it with the status page's figure from the same snapshots, per
// node and cluster-wide (the status page's per-member figures summed).
// The expression that counted every result as a Get (0.19 on the dashboard
// vs 0.60 on the status page in issue 13) fails it, as the last check shows.
//
// It runs real nodes, so it depends on scheduling: it passes
// go test -race -count=50 -run TestHitRatioPanelMatchesStatusPage ./metrics/
// while timeout 300 sh -c 'yes >/dev/null & yes >/dev/null & wait' runs
// (50 of 50 on the 2-core box, next to the other agents' jobs).
func TestHitRatioPanelMatchesStatusPage(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a cluster on 127.0.0.1")
	}
	ctx := t.Context()
	groups := []string{"items", "orders", "users"}
	const keys = 12
	src := &lagSource{ver: map[string]uint64{}, lag: map[string]int{}}
	for _, g := range groups {
		for i := range keys {
			src.ver[fmt.Sprintf("%s-%d", g, i)] = 1
		}
	}

	type member struct {
		n      *node.Node
		obs    *snapshotObserver
		reg    *prometheus.Registry
		groups map[string]*node.Group[string]
		gets   map[string]int // plain Gets issued here, per group
	}
	cluster := fmt.Sprintf("hitratio-%x", rand.Uint64()) // unique: no other test's cluster merges
	var ms []*member
	// The nodes' warnings (trust lost, ...), shown if the test fails.
	logs := &lockedBuffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("node warnings:\n%s", logs.String())
		}
	})
	for i := range 3 {
		reg := prometheus.NewPedanticRegistry()
		obs := &snapshotObserver{Metrics: New(reg)}
		cfg := node.DefaultLocalConfig(fmt.Sprintf("n%d", i))
		cfg.Cluster = cluster
		cfg.Observer = obs
		cfg.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
		// A lease of 5 s: on a loaded 2-core box under -race, the 1 s lease
		// of DefaultLocalConfig lapses between watchdog steps ("stalled past
		// the trust lease") and reads turn degraded. Trust is not under test
		// here; every kind of read is counted the same either way.
		cfg.MaxStaleness = 10 * time.Second
		if i > 0 {
			cfg.Join = []string{ms[0].n.Addr()}
		}
		n, err := node.Start(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { n.Close(context.Background()) })
		if err := obs.Err(); err != nil {
			t.Fatalf("n%d metrics: %v", i, err)
		}
		m := &member{n: n, obs: obs, reg: reg, groups: map[string]*node.Group[string]{}, gets: map[string]int{}}
		for _, name := range groups {
			g, err := node.NewGroup(n, name, node.GroupConfig[string]{Loader: src})
			if err != nil {
				t.Fatal(err)
			}
			m.groups[name] = g
		}
		ms = append(ms, m)
	}
	readyCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for _, m := range ms {
		if err := m.n.WaitReady(readyCtx); err != nil {
			t.Fatalf("%s not ready: %v", m.n.Name(), err)
		}
	}
	for _, m := range ms { // ready means every live peer lists it: all see all
		if got := len(m.n.Members()); got != len(ms) {
			t.Fatalf("%s sees %d members, want %d: %+v", m.n.Name(), got, len(ms), m.n.Members())
		}
	}

	targets := map[string]prometheus.Gatherer{}
	for _, m := range ms {
		targets[m.n.Name()] = m.reg
	}
	before, err := scrapeAll(targets)
	if err != nil {
		t.Fatal(err)
	}
	startStats := map[string]node.Stats{}
	for _, m := range ms {
		startStats[m.n.Name()] = m.obs.snapshot()
	}

	staleErrors := 0
	get := func(m *member, group, key string, opts ...node.ReadOption) {
		t.Helper()
		if len(opts) == 0 {
			m.gets[group]++
		}
		_, err := m.groups[group].Get(ctx, key, opts...)
		var se *node.StaleError
		if errors.As(err, &se) {
			staleErrors++
		}
		if err != nil && !node.IsNotFound(err) && se == nil {
			t.Fatalf("%s: Get(%s, %q): %v", m.n.Name(), group, key, err)
		}
	}
	// Misses (loaded here or by the owner), then hits.
	for round := range 3 {
		for _, m := range ms {
			for gi, group := range groups {
				for i := range keys - 4*gi { // a different hit ratio per group
					get(m, group, fmt.Sprintf("%s-%d", group, i))
				}
				get(m, group, fmt.Sprintf("%s-absent-%d", group, round)) // not found
			}
		}
	}
	// Authoritative reads: bypass, neither hit nor miss.
	for _, m := range ms {
		for _, group := range groups {
			get(m, group, group+"-0", node.Authoritative())
		}
	}
	// Writes whose first loads lag: the floor refuses them, and the key's
	// owner loads again within the same Get (a non-owner asking it meanwhile
	// would fail at once with a StaleError: the owner's answer is final).
	// Every node holds the floor before anyone reads (AckAll).
	byName := map[string]*member{}
	for _, m := range ms {
		byName[m.n.Name()] = m
	}
	for i := range keys {
		key := fmt.Sprintf("orders-%d", i)
		v := src.write(key, 2)
		if err := ms[0].groups["orders"].Invalidate(ctx, key, v, node.AckAll()); err != nil {
			t.Fatal(err)
		}
		owner := byName[ms[0].groups["orders"].Owner(key)]
		if owner == nil {
			t.Fatalf("owner of %q is %q, not a member", key, ms[0].groups["orders"].Owner(key))
		}
		get(owner, "orders", key)
		for _, m := range ms {
			get(m, "orders", key)
		}
	}
	// More hits, so the two expressions differ by more than rounding.
	for _, m := range ms {
		for _, group := range groups {
			for range 3 {
				get(m, group, group+"-1")
			}
		}
	}

	after, err := scrapeAll(targets)
	if err != nil {
		t.Fatal(err)
	}
	e := &promEval{before: before, after: after, window: 60}
	expr := hitRatioExpr(t)

	var rejected, hits, misses uint64
	for _, m := range ms {
		name := m.n.Name()
		st := m.obs.snapshot()
		got, err := e.eval(expr, map[string]string{"job": ".*", "instance": name, "group": ".*", "__rate_interval": "1m"})
		if err != nil {
			t.Fatalf("evaluating %q: %v", expr, err)
		}
		if len(got) != len(groups) {
			t.Errorf("%s: the panel shows %d series %v, want one per group (%d)", name, len(got), got, len(groups))
		}
		for _, g := range st.Groups {
			g0 := groupStats(startStats[name], g.Name)
			delta := node.GroupStats{Hits: g.Hits - g0.Hits, Misses: g.Misses - g0.Misses}
			want, ok := statusHitRatio(delta)
			panel, present := got[fmt.Sprintf("{group=%q}", g.Name)]
			if !ok {
				// No plain read (the node did not trust its cache throughout:
				// every read was degraded): the status page shows no figure,
				// and the panel 0/0.
				if present && !math.IsNaN(panel) {
					t.Errorf("%s/%s: no plain reads, but the panel shows %v", name, g.Name, panel)
				}
				t.Logf("%s/%s: no plain reads (degraded %d)", name, g.Name, g.Degraded-g0.Degraded)
				continue
			}
			if !present || math.Abs(panel-want) > 1e-9 {
				t.Errorf("%s/%s: the panel shows %.4f (present %v), the status page %.4f (hits %d, misses %d, stale_rejected %d, bypass %d)",
					name, g.Name, panel, present, want, delta.Hits, delta.Misses, g.StaleRejected-g0.StaleRejected, g.Bypass-g0.Bypass)
			}
			t.Logf("%s/%s: panel %.4f, status page %.4f; plain Gets issued %d, hits+misses %d",
				name, g.Name, panel, want, m.gets[g.Name], delta.Hits+delta.Misses)
			// Each plain Get is one hit or one miss (a degraded one neither):
			// owner lookups for peers and stale-on-error look-ups are not
			// hits (they counted 17% too many).
			if n, d := delta.Hits+delta.Misses, g.Degraded-g0.Degraded; n > uint64(m.gets[g.Name]) || (d == 0 && n != uint64(m.gets[g.Name])) {
				t.Errorf("%s/%s: hits+misses %d for %d plain Gets (%d degraded reads)", name, g.Name, n, m.gets[g.Name], d)
			}
			rejected += g.StaleRejected - g0.StaleRejected
			hits += delta.Hits
			misses += delta.Misses
		}
	}
	if rejected == 0 || misses == 0 || hits == 0 {
		t.Fatalf("the workload lacks a kind of read: hits %d, misses %d, stale_rejected %d (lagging loads %d)",
			hits, misses, rejected, src.hits)
	}

	// Cluster-wide: the panel summed over every instance against the
	// members' figures summed.
	got, err := e.eval(expr, map[string]string{"job": ".*", "instance": ".*", "group": ".*", "__rate_interval": "1m"})
	if err != nil {
		t.Fatal(err)
	}
	for _, group := range groups {
		var sum node.GroupStats
		for _, m := range ms {
			g, g0 := groupStats(m.obs.snapshot(), group), groupStats(startStats[m.n.Name()], group)
			sum.Hits += g.Hits - g0.Hits
			sum.Misses += g.Misses - g0.Misses
		}
		want, _ := statusHitRatio(sum)
		if panel := got[fmt.Sprintf("{group=%q}", group)]; math.Abs(panel-want) > 1e-9 {
			t.Errorf("cluster/%s: the panel shows %.4f, the status pages %.4f", group, panel, want)
		}
	}

	// The test can fail: the old query divided by every result, so a Get
	// refused below its floor (and a bypass read) counted again.
	old := `sum by (group) (rate(nearcache_gets_total{job=~"$job",instance=~"$instance",group=~"$group",result="hit"}[$__rate_interval])) / sum by (group) (rate(nearcache_gets_total{job=~"$job",instance=~"$instance",group=~"$group"}[$__rate_interval]))`
	oldGot, err := e.eval(old, map[string]string{"job": ".*", "instance": ".*", "group": ".*", "__rate_interval": "1m"})
	if err != nil {
		t.Fatal(err)
	}
	checkPanelsReturnSeries(t, e)

	o, n := oldGot[`{group="orders"}`], got[`{group="orders"}`]
	t.Logf("orders cluster-wide: the panel %.4f, the old query %.4f; stale_rejected %d, lagging loads %d, Gets failed with a StaleError %d", n, o, rejected, src.hits, staleErrors)
	if math.Abs(o-n) < 0.01 {
		t.Errorf("the old query gives %.4f for orders, the panel %.4f: the workload does not tell them apart", o, n)
	}
}

// checkPanelsReturnSeries, part of TestHitRatioPanelMatchesStatusPage's
// cluster run, evaluates every panel query the
// evaluator reads over the same two scrapes and requires series, so a
// label typo (which the names-only check cannot see) fails.
func checkPanelsReturnSeries(t *testing.T, e *promEval) {
	t.Helper()
	raw, err := os.ReadFile(dashboardPath)
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Panels []struct {
			Title   string
			Targets []struct{ Expr, RefID string }
		}
	}
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatal(err)
	}
	vars := map[string]string{"job": ".*", "instance": ".*", "group": ".*", "__rate_interval": "1m"}
	evaluated := 0
	for _, p := range d.Panels {
		for _, tg := range p.Targets {
			if strings.Contains(tg.Expr, "histogram_quantile") || strings.Contains(tg.Expr, "nearcache_feed_") {
				continue // not evaluated here / exported by internal/server's feed
			}
			got, err := e.eval(tg.Expr, vars)
			if err != nil {
				t.Errorf("panel %q %s: %v", p.Title, tg.RefID, err)
				continue
			}
			if len(got) == 0 {
				t.Errorf("panel %q %s shows no series on a running cluster: %s", p.Title, tg.RefID, tg.Expr)
			}
			evaluated++
		}
	}
	if evaluated < 30 {
		t.Errorf("evaluated only %d panel queries", evaluated)
	}
}

// groupStats returns the stats of the group named name in s (zero if none).
func groupStats(s node.Stats, name string) node.GroupStats {
	for _, g := range s.Groups {
		if g.Name == name {
			return g
		}
	}
	return node.GroupStats{}
}
