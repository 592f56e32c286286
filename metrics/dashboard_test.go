package metrics

import (
	"encoding/json"
	"maps"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nearcache/nearcache/node"
	"github.com/prometheus/client_golang/prometheus"
)

const dashboardPath = "dashboards/nearcache.json"

// exported returns the names of the metric families this package exports
// with default Config, each mapped to whether it is a histogram, gathered after Attach with one group and one observation
// per histogram (a HistogramVec without children exports nothing).
func exported(t *testing.T) map[string]bool {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	m := New(reg)
	m.Attach(func() node.Stats {
		return node.Stats{Groups: []node.GroupStats{{Name: "g"}}}
	})
	defer m.Detach()
	m.ObserveLoad("g", time.Millisecond, nil)
	m.ObservePropagation("g", time.Millisecond)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("Gather: %v", err)
	}
	out := map[string]bool{} // name -> is a histogram
	for _, mf := range mfs {
		out[mf.GetName()] = mf.GetType().String() == "HISTOGRAM"
	}
	return out
}

// unknownMetrics returns, sorted and deduplicated, the nearcache_ names used
// in exprs that are not exported: a name is known if exported as is, or if
// it is a histogram's name plus _bucket, _sum or _count.
func unknownMetrics(exprs []string, known map[string]bool) []string {
	var bad []string
	for _, e := range exprs {
		for _, name := range metricNameRE.FindAllString(e, -1) {
			if _, ok := known[name]; ok {
				continue
			}
			isSeries := false
			for _, suf := range []string{"_bucket", "_sum", "_count"} {
				if base, ok := strings.CutSuffix(name, suf); ok && known[base] {
					isSeries = true
				}
			}
			if !isSeries {
				bad = append(bad, name)
			}
		}
	}
	slices.Sort(bad)
	return slices.Compact(bad)
}

func TestUnknownMetrics(t *testing.T) {
	known := exported(t)
	tests := []struct {
		name string
		expr string
		want []string
	}{
		{"counter", `sum by (group) (rate(nearcache_gets_total{result="hit"}[5m]))`, nil},
		{"gauge", `nearcache_members`, nil},
		{"histogram bucket", `histogram_quantile(0.99, sum by (le) (rate(nearcache_load_duration_seconds_bucket[5m])))`, nil},
		{"histogram count", `rate(nearcache_propagation_delay_seconds_count[5m])`, nil},
		{"bogus metric", `rate(nearcache_bogus_total[5m])`, []string{"nearcache_bogus_total"}},
		{"typo", `nearcache_get_total / nearcache_gets_total`, []string{"nearcache_get_total"}},
		{"suffix on a counter", `nearcache_gets_total_bucket`, []string{"nearcache_gets_total_bucket"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := unknownMetrics([]string{tt.expr}, known); !slices.Equal(got, tt.want) {
				t.Errorf("unknownMetrics(%q) = %q, want %q", tt.expr, got, tt.want)
			}
		})
	}
}

// externallyExported are the families the dashboard queries that another
// package exports, not this one: the nearcache node binary's change feed
// (internal/server, which registers them on the same registry while its feed
// runs). Each name is listed on purpose: a typo in a panel, or a feed metric
// renamed there, must still fail TestDashboardUsesExportedMetrics, and
// cmd/nearcache's cluster test checks them against a real node's scrape.
var externallyExported = map[string]bool{
	"nearcache_feed_holder":             false, // gauge: 1 on the node holding the feed
	"nearcache_feed_lag_bytes":          false, // gauge
	"nearcache_feed_lag_seconds":        false, // gauge
	"nearcache_feed_changes_total":      false, // counter
	"nearcache_feed_transactions_total": false, // counter
	"nearcache_feed_ignored_total":      false, // counter
	"nearcache_feed_failovers_total":    false, // counter
	"nearcache_feed_reconnects_total":   false, // counter
}

// TestDashboardUsesExportedMetrics fails if the dashboard queries a metric
// this package does not export (a rename, a typo, a removed metric), other
// than the externally exported ones listed above.
func TestDashboardUsesExportedMetrics(t *testing.T) {
	raw, err := os.ReadFile(dashboardPath)
	if err != nil {
		t.Fatal(err)
	}
	exprs, err := dashboardExprs(raw)
	if err != nil {
		t.Fatal(err)
	}
	if len(exprs) < 20 {
		t.Fatalf("found only %d expressions in %s; is the walk broken?", len(exprs), dashboardPath)
	}
	known := exported(t)
	for name := range externallyExported {
		if _, clash := known[name]; clash {
			t.Errorf("%s is listed as exported elsewhere, but this package exports it", name)
		}
	}
	withExternal := maps.Clone(known)
	maps.Copy(withExternal, externallyExported)
	if bad := unknownMetrics(exprs, withExternal); len(bad) > 0 {
		t.Errorf("%s queries metrics nobody exports: %q", dashboardPath, bad)
	}
	// And the other way: a new metric should get a panel.
	used := map[string]bool{}
	for _, e := range exprs {
		for _, name := range metricNameRE.FindAllString(e, -1) {
			for _, suf := range []string{"_bucket", "_sum", "_count"} {
				if base, ok := strings.CutSuffix(name, suf); ok && known[base] {
					name = base
				}
			}
			used[name] = true
		}
	}
	for name := range withExternal {
		if !used[name] {
			t.Errorf("metric %s is exported but no dashboard panel shows it", name)
		}
	}
}

// TestDashboardImportable checks what Grafana needs to import the file as is.
func TestDashboardImportable(t *testing.T) {
	raw, err := os.ReadFile(dashboardPath)
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Inputs []struct {
			Name     string `json:"name"`
			Type     string `json:"type"`
			PluginID string `json:"pluginId"`
		} `json:"__inputs"`
		SchemaVersion int    `json:"schemaVersion"`
		UID           string `json:"uid"`
		Title         string `json:"title"`
		Templating    struct {
			List []struct{ Name, Type string } `json:"list"`
		} `json:"templating"`
		Panels []struct {
			ID         int    `json:"id"`
			Type       string `json:"type"`
			Title      string `json:"title"`
			Datasource *struct {
				Type string `json:"type"`
				UID  string `json:"uid"`
			} `json:"datasource"`
			GridPos struct{ H, W, X, Y int } `json:"gridPos"`
			Targets []struct {
				Expr  string `json:"expr"`
				RefID string `json:"refId"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatal(err)
	}
	if d.SchemaVersion < 36 || d.UID == "" || d.Title == "" {
		t.Errorf("schemaVersion %d, uid %q, title %q: want >= 36 and both set", d.SchemaVersion, d.UID, d.Title)
	}
	if len(d.Inputs) != 1 || d.Inputs[0].Name != "DS_PROMETHEUS" || d.Inputs[0].PluginID != "prometheus" {
		t.Errorf("__inputs = %+v, want one DS_PROMETHEUS prometheus datasource", d.Inputs)
	}
	if len(d.Templating.List) == 0 || d.Templating.List[0].Name != "datasource" || d.Templating.List[0].Type != "datasource" {
		t.Errorf("first template variable = %+v, want the datasource variable", d.Templating.List)
	}
	ids := map[int]bool{}
	for _, p := range d.Panels {
		if ids[p.ID] {
			t.Errorf("panel id %d used twice", p.ID)
		}
		ids[p.ID] = true
		if p.GridPos.X+p.GridPos.W > 24 || p.GridPos.W <= 0 || p.GridPos.H <= 0 {
			t.Errorf("panel %q: gridPos %+v outside the 24-column grid", p.Title, p.GridPos)
		}
		if p.Type == "row" {
			continue
		}
		if p.Datasource == nil || p.Datasource.UID != "${datasource}" {
			t.Errorf("panel %q: datasource %+v, want uid ${datasource}", p.Title, p.Datasource)
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no targets", p.Title)
		}
		for _, tg := range p.Targets {
			if tg.Expr == "" || tg.RefID == "" {
				t.Errorf("panel %q: target %+v lacks expr or refId", p.Title, tg)
			}
		}
	}
}

func TestDashboardMetrics(t *testing.T) {
	names, err := DashboardMetrics()
	if err != nil {
		t.Fatal(err)
	}
	known := exported(t)
	for _, n := range names {
		if _, ok := known[n]; !ok {
			t.Errorf("DashboardMetrics lists %s, which is not exported", n)
		}
	}
	if !slices.Contains(names, "nearcache_propagation_delay_seconds") || slices.Contains(names, "nearcache_propagation_delay_seconds_bucket") {
		t.Errorf("histogram series are not folded under the histogram's name: %v", names)
	}
	feed, err := DashboardFeedMetrics()
	if err != nil {
		t.Fatal(err)
	}
	if want := slices.Sorted(maps.Keys(externallyExported)); !slices.Equal(feed, want) {
		t.Errorf("DashboardFeedMetrics = %v, want the externally exported families %v", feed, want)
	}
	if got := metricNames([]string{`rate(nearcache_x_bucket[1m]) + nearcache_y_total`}); !slices.Equal(got, []string{"nearcache_x", "nearcache_y_total"}) {
		t.Errorf("metricNames = %v", got)
	}
}
