package metrics

import (
	"math"
	"strings"
	"testing"
)

func TestPromEval(t *testing.T) {
	s := func(v float64, kv ...string) promSeries {
		l := map[string]string{}
		for i := 0; i < len(kv); i += 2 {
			l[kv[i]] = kv[i+1]
		}
		return promSeries{l, v}
	}
	before := []promSeries{
		s(10, "__name__", "c_total", "group", "a", "result", "hit", "instance", "n1"),
		s(5, "__name__", "c_total", "group", "a", "result", "miss", "instance", "n1"),
		s(0, "__name__", "c_total", "group", "b", "result", "hit", "instance", "n1"),
		s(100, "__name__", "c_total", "group", "a", "result", "hit", "instance", "n2"),
		s(1, "__name__", "g", "instance", "n1"),
	}
	after := []promSeries{
		s(40, "__name__", "c_total", "group", "a", "result", "hit", "instance", "n1"),
		s(15, "__name__", "c_total", "group", "a", "result", "miss", "instance", "n1"),
		s(6, "__name__", "c_total", "group", "b", "result", "hit", "instance", "n1"),
		s(20, "__name__", "c_total", "group", "a", "result", "hit", "instance", "n2"), // reset: counts 20
		s(0, "__name__", "g", "instance", "n1"),
		s(1, "__name__", "g", "instance", "n2"),
		s(9, "__name__", "c_total", "group", "c", "result", "hit", "instance", "n1"), // new: no rate yet
	}
	e := &promEval{before: before, after: after, window: 10}
	vars := map[string]string{"__rate_interval": "1m", "instance": ".*"}
	tests := []struct {
		expr string
		want map[string]float64
	}{
		{`sum by (group) (increase(c_total[$__rate_interval]))`, map[string]float64{`{group="a"}`: 30 + 10 + 20, `{group="b"}`: 6}},
		{`sum by (group) (rate(c_total{result="hit",instance=~"$instance"}[5m])) / sum by (group) (rate(c_total{result=~"hit|miss"}[5m]))`,
			map[string]float64{`{group="a"}`: 50.0 / 60, `{group="b"}`: 1}},
		{`sum(rate(c_total{instance!="n2",result!~"m.*"}[1m]))`, map[string]float64{`{}`: 3.6}},
		{`sum(1 - g)`, map[string]float64{`{}`: 1}},
		{`min by (instance) (g{instance=~"n"})`, map[string]float64{}}, // anchored: "n" matches neither
		{`count by (instance) (g)`, map[string]float64{`{instance="n1"}`: 1, `{instance="n2"}`: 1}},
		{`max(g) * 2 + 1`, map[string]float64{`{}`: 3}},
		{`2 * (1 + 1) - 6 / 2`, nil}, // a number: an error
	}
	for _, tt := range tests {
		got, err := e.eval(tt.expr, vars)
		if tt.want == nil {
			if err == nil {
				t.Errorf("eval(%q) = %v, want an error", tt.expr, got)
			}
			continue
		}
		if err != nil {
			t.Errorf("eval(%q): %v", tt.expr, err)
			continue
		}
		if len(got) != len(tt.want) {
			t.Errorf("eval(%q) = %v, want %v", tt.expr, got, tt.want)
			continue
		}
		for k, w := range tt.want {
			if g, ok := got[k]; !ok || math.Abs(g-w) > 1e-9 {
				t.Errorf("eval(%q)[%s] = %v (present %v), want %v", tt.expr, k, g, ok, w)
			}
		}
	}
	for _, bad := range []string{
		`histogram_quantile(0.5, sum by (le) (rate(x_bucket[1m])))`,
		`a / on (instance) b`,
		`rate(x)`,
		`x offset 5m`,
		`sum without (a) (x)`,
		`rate(x[$job])`,
	} {
		if got, err := e.eval(bad, vars); err == nil {
			t.Errorf("eval(%q) = %v, want an error (unsupported)", bad, got)
		} else if strings.Contains(err.Error(), "panic") {
			t.Errorf("eval(%q): %v", bad, err)
		}
	}
}
