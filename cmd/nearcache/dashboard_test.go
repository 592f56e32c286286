package main

import (
	"encoding/json"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
)

const dashboardFile = "../../metrics/dashboards/nearcache.json"

var metricRE = regexp.MustCompile(`nearcache_[a-z_]+`)

// dashboardExprs returns every PromQL string of the dashboard: "expr" fields
// at any depth and template variables' "definition"s.
func dashboardExprs(t *testing.T) []string {
	t.Helper()
	raw, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var doc any
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	var out []string
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, x := range v {
				if s, ok := x.(string); ok && (k == "expr" || k == "definition") {
					out = append(out, s)
				}
				walk(x)
			}
		case []any:
			for _, x := range v {
				walk(x)
			}
		}
	}
	walk(doc)
	if len(out) == 0 {
		t.Fatalf("%s has no expressions", dashboardFile)
	}
	return out
}

// scrapedNames returns the series names of a Prometheus text exposition.
func scrapedNames(exposition string) map[string]bool {
	names := map[string]bool{}
	for line := range strings.Lines(exposition) {
		if line == "" || line[0] == '#' {
			continue
		}
		if i := strings.IndexAny(line, "{ "); i > 0 {
			names[line[:i]] = true
		}
	}
	return names
}

// missingMetrics returns, sorted, the nearcache_ metrics the expressions use
// that the scrape lacks. A histogram's _bucket, _sum and _count stand for the
// histogram: the base name is present if any of its series is.
func missingMetrics(exprs []string, scraped map[string]bool) []string {
	present := map[string]bool{}
	for name := range scraped {
		present[name] = true
		for _, suf := range []string{"_bucket", "_sum", "_count"} {
			if base, ok := strings.CutSuffix(name, suf); ok {
				present[base] = true
			}
		}
	}
	var missing []string
	for _, e := range exprs {
		for _, name := range metricRE.FindAllString(e, -1) {
			for _, suf := range []string{"_bucket", "_sum", "_count"} {
				name = strings.TrimSuffix(name, suf)
			}
			if !present[name] {
				missing = append(missing, name)
			}
		}
	}
	slices.Sort(missing)
	return slices.Compact(missing)
}

func TestMissingMetrics(t *testing.T) {
	scrape := `# HELP nearcache_gets_total Gets.
# TYPE nearcache_gets_total counter
nearcache_gets_total{group="items",result="hit"} 3
nearcache_members 3
nearcache_load_duration_seconds_bucket{group="items",le="0.001"} 1
nearcache_load_duration_seconds_sum{group="items"} 0.0004
nearcache_load_duration_seconds_count{group="items"} 1
`
	tests := []struct {
		name  string
		exprs []string
		want  []string
	}{
		{name: "all present", exprs: []string{
			`sum(rate(nearcache_gets_total{result="hit"}[5m])) / sum(rate(nearcache_gets_total[5m]))`,
			`max(nearcache_members)`,
			`histogram_quantile(0.99, sum by (le) (rate(nearcache_load_duration_seconds_bucket[5m])))`,
			`rate(nearcache_load_duration_seconds_sum[5m]) / rate(nearcache_load_duration_seconds_count[5m])`,
		}},
		// The test must be able to fail: a panel querying a metric nobody exports.
		{name: "renamed metric", exprs: []string{`sum(rate(nearcache_get_total[5m]))`}, want: []string{"nearcache_get_total"}},
		{name: "histogram without series", exprs: []string{`rate(nearcache_propagation_delay_seconds_bucket[1m])`, `nearcache_bogus`},
			want: []string{"nearcache_bogus", "nearcache_propagation_delay_seconds"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := missingMetrics(tt.exprs, scrapedNames(scrape)); !slices.Equal(got, tt.want) {
				t.Errorf("missingMetrics = %v, want %v", got, tt.want)
			}
		})
	}
	// And the real dashboard is parsed: it queries the histograms.
	exprs := strings.Join(dashboardExprs(t), "\n")
	for _, want := range []string{"nearcache_propagation_delay_seconds_bucket", "nearcache_gets_total"} {
		if !strings.Contains(exprs, want) {
			t.Errorf("dashboard expressions lack %s", want)
		}
	}
}
