package bench

import (
	"fmt"
	"image/color"
	"math"
	"path/filepath"
	"slices"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
)

// WritePlots writes PNG plots of rep into dir (which must exist), per
// workload: latency-WORKLOAD.png (read latency against quantile, log-log),
// dbload-WORKLOAD.png (database queries/s over time); and, over the
// workloads with writes, stale-rate.png and staleness-max.png. It returns the
// files' names.
func WritePlots(dir string, rep *Report) ([]string, error) {
	var files []string
	save := func(p *plot.Plot, name string) error {
		if err := p.Save(20*vg.Centimeter, 12*vg.Centimeter, filepath.Join(dir, name)); err != nil {
			return fmt.Errorf("bench: plot %s: %w", name, err)
		}
		files = append(files, name)
		return nil
	}
	for _, w := range workloadsOf(rep) {
		rs := resultsOf(rep, w)
		lat, err := latencyPlot(w, rs)
		if err != nil {
			return files, err
		}
		if err := save(lat, "latency-"+w+".png"); err != nil {
			return files, err
		}
		db, err := dbPlot(w, rs)
		if err != nil {
			return files, err
		}
		if err := save(db, "dbload-"+w+".png"); err != nil {
			return files, err
		}
	}
	for _, m := range []struct {
		file, title, unit string
		f                 func(Result) float64
	}{
		{"stale-rate.png", "stale reads (share of reads)", "% of reads", func(r Result) float64 { return 100 * r.StaleRate }},
		{"staleness-max.png", "staleness of the stalest read served", "ms", func(r Result) float64 { return float64(r.StalenessMax) / 1e6 }},
	} {
		p, err := stalePlot(rep, m.title, m.unit, m.f)
		if err != nil {
			return files, err
		}
		if p == nil {
			continue
		}
		if err := save(p, m.file); err != nil {
			return files, err
		}
	}
	return files, nil
}

func workloadsOf(rep *Report) []string {
	var ws []string
	for _, r := range rep.Results {
		if !slices.Contains(ws, r.Workload) {
			ws = append(ws, r.Workload)
		}
	}
	return ws
}

func resultsOf(rep *Report, workload string) []Result {
	var rs []Result
	for _, r := range rep.Results {
		if r.Workload == workload {
			rs = append(rs, r)
		}
	}
	return rs
}

// latencyPlot draws each strategy's read latency (µs, log) against the
// quantile, as nines (1 = p90, 2 = p99, 3 = p99.9).
func latencyPlot(workload string, rs []Result) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = "read latency, " + workload
	p.X.Label.Text = "quantile (nines: 0.3=p50, 1=p90, 2=p99, 3=p99.9)"
	p.Y.Label.Text = "latency (µs, log)"
	p.Y.Scale = plot.LogScale{}
	p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
	p.Legend.Top = true
	p.Legend.Left = true
	p.Add(plotter.NewGrid())
	err := addLines(p, rs, func(r Result) plotter.XYs {
		var xy plotter.XYs
		for _, pt := range r.Latency {
			if pt.Q < 1 && pt.D > 0 {
				xy = append(xy, plotter.XY{X: -math.Log10(1 - pt.Q), Y: float64(pt.D) / 1e3})
			}
		}
		return xy
	})
	if err != nil {
		return nil, fmt.Errorf("bench: latency plot: %w", err)
	}
	return p, nil
}

// dbPlot draws each strategy's database queries per second over time.
func dbPlot(workload string, rs []Result) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = "database load, " + workload
	p.X.Label.Text = "time since start (s; warm-up included)"
	p.Y.Label.Text = "read queries/s (log; 0 drawn as 1)"
	p.Y.Scale = plot.LogScale{}
	p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
	p.Legend.Top = true
	p.Add(plotter.NewGrid())
	err := addLines(p, rs, func(r Result) plotter.XYs {
		xy := make(plotter.XYs, len(r.DBSeries))
		for i, q := range r.DBSeries {
			xy[i] = plotter.XY{X: float64(i+1) * seriesInterval.Seconds(), Y: max(q, 1)}
		}
		return xy
	})
	if err != nil {
		return nil, fmt.Errorf("bench: db plot: %w", err)
	}
	return p, nil
}

// addLines adds one line per result: nearcache thick and black, the others
// in plotutil's colours and dashes.
func addLines(p *plot.Plot, rs []Result, points func(Result) plotter.XYs) error {
	for i, r := range rs {
		xy := points(r)
		if len(xy) == 0 {
			continue
		}
		l, err := plotter.NewLine(xy)
		if err != nil {
			return err
		}
		l.Color = plotutil.Color(i)
		l.Dashes = plotutil.Dashes(i)
		if r.Strategy == "nearcache" {
			l.Color = color.Black
			l.Dashes = nil
			l.Width = vg.Points(2.5)
		}
		p.Add(l)
		p.Legend.Add(r.Strategy, l)
	}
	return nil
}

// stalePlot draws f per strategy, one bar group per workload with writes;
// nil when no workload had writes.
func stalePlot(rep *Report, title, unit string, f func(Result) float64) (*plot.Plot, error) {
	var strategies, workloads []string
	for _, r := range rep.Results {
		if !slices.Contains(strategies, r.Strategy) {
			strategies = append(strategies, r.Strategy)
		}
		if r.Writes > 0 && !slices.Contains(workloads, r.Workload) {
			workloads = append(workloads, r.Workload)
		}
	}
	if len(workloads) == 0 {
		return nil, nil
	}
	p := plot.New()
	p.Title.Text = title
	p.Y.Label.Text = unit
	p.Legend.Top = true
	width := vg.Points(60 / float64(len(workloads)))
	for wi, w := range workloads {
		vals := make(plotter.Values, len(strategies))
		for si, s := range strategies {
			for _, r := range rep.Results {
				if r.Workload == w && r.Strategy == s {
					vals[si] = f(r)
				}
			}
		}
		bars, err := plotter.NewBarChart(vals, width)
		if err != nil {
			return nil, fmt.Errorf("bench: stale plot: %w", err)
		}
		bars.Color = plotutil.Color(wi)
		bars.LineStyle.Width = 0
		bars.Offset = width * vg.Length(float64(wi)-float64(len(workloads)-1)/2)
		p.Add(bars)
		p.Legend.Add(w, bars)
	}
	p.NominalX(strategies...)
	return p, nil
}
