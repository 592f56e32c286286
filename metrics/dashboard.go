package metrics

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
)

//go:embed dashboards/nearcache.json
var dashboardJSON []byte // read-only

// Dashboard returns the Grafana dashboard (dashboards/nearcache.json),
// importable as is: it asks for a Prometheus data source on import.
func Dashboard() []byte { return bytes.Clone(dashboardJSON) }

var metricNameRE = regexp.MustCompile(`nearcache_[a-z_]+`)

// DashboardMetrics returns, sorted and deduplicated, the names of the metrics
// the dashboard queries that every node exports (this package's), a
// histogram's _bucket, _sum and _count series under the histogram's name.
// Tests check them against what a node exports. The change feed's, which
// only a node running a feed exports, are [DashboardFeedMetrics].
func DashboardMetrics() ([]string, error) {
	names, err := dashboardNames()
	if err != nil {
		return nil, err
	}
	return slices.DeleteFunc(names, isFeedMetric), nil
}

// DashboardFeedMetrics returns, sorted, the change feed's metrics the
// dashboard queries (nearcache_feed_*): the nearcache node binary exports
// them while its feed runs (internal/server), this package never does.
func DashboardFeedMetrics() ([]string, error) {
	names, err := dashboardNames()
	if err != nil {
		return nil, err
	}
	return slices.DeleteFunc(names, func(n string) bool { return !isFeedMetric(n) }), nil
}

func isFeedMetric(name string) bool { return strings.HasPrefix(name, DefaultNamespace+"_feed_") }

func dashboardNames() ([]string, error) {
	exprs, err := dashboardExprs(dashboardJSON)
	if err != nil {
		return nil, err
	}
	return metricNames(exprs), nil
}

// metricNames returns the nearcache_ names used in exprs, histogram series
// suffixes removed, sorted and deduplicated.
func metricNames(exprs []string) []string {
	var out []string
	for _, e := range exprs {
		for _, name := range metricNameRE.FindAllString(e, -1) {
			for _, suf := range []string{"_bucket", "_sum", "_count"} {
				name = strings.TrimSuffix(name, suf)
			}
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// dashboardExprs returns every PromQL string in a dashboard: "expr" fields at
// any depth, and template variables' "definition"s.
func dashboardExprs(raw []byte) ([]string, error) {
	var doc any
	if err := json.Unmarshal(raw, &doc); err != nil {
		return nil, fmt.Errorf("metrics: dashboard is not valid JSON: %w", err)
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
		return nil, fmt.Errorf("metrics: dashboard has no expressions")
	}
	return out, nil
}
