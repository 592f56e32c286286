package main

import (
	"slices"
	"strings"
	"testing"

	"github.com/nearcache/nearcache/metrics"
)

// dashboardMetrics returns the metrics the shipped dashboard queries.
func dashboardMetrics(t *testing.T) []string {
	t.Helper()
	names, err := metrics.DashboardMetrics()
	if err != nil {
		t.Fatal(err)
	}
	return names
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

// missingMetrics returns, sorted, the metrics (a histogram by its own name)
// that the scrape lacks. A histogram is present if any of its _bucket, _sum
// and _count series is.
func missingMetrics(names []string, scraped map[string]bool) []string {
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
	for _, name := range names {
		if !present[name] {
			missing = append(missing, name)
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
		names []string
		want  []string
	}{
		{name: "all present", names: []string{"nearcache_gets_total", "nearcache_members", "nearcache_load_duration_seconds"}},
		// The test must be able to fail: a panel querying a metric nobody exports.
		{name: "renamed metric", names: []string{"nearcache_get_total"}, want: []string{"nearcache_get_total"}},
		{name: "histogram without series", names: []string{"nearcache_propagation_delay_seconds", "nearcache_bogus"},
			want: []string{"nearcache_bogus", "nearcache_propagation_delay_seconds"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := missingMetrics(tt.names, scrapedNames(scrape)); !slices.Equal(got, tt.want) {
				t.Errorf("missingMetrics = %v, want %v", got, tt.want)
			}
		})
	}
	// And the real dashboard is parsed: it queries the histograms.
	names := dashboardMetrics(t)
	for _, want := range []string{"nearcache_propagation_delay_seconds", "nearcache_gets_total"} {
		if !slices.Contains(names, want) {
			t.Errorf("dashboard metrics lack %s", want)
		}
	}
}
