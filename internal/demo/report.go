package demo

import (
	"fmt"
	"io"
	"text/tabwriter"
	"time"
)

// fmtDur prints a duration compactly: µs below a millisecond, ms below a
// second; "-" for 0.
func fmtDur(d time.Duration) string {
	switch {
	case d <= 0:
		return "-"
	case d < time.Millisecond:
		return fmt.Sprintf("%.1fµs", float64(d)/float64(time.Microsecond))
	case d < time.Second:
		return fmt.Sprintf("%.2fms", float64(d)/float64(time.Millisecond))
	}
	return fmt.Sprintf("%.2fs", d.Seconds())
}

func fmtMicros(us float64) string { return fmtDur(time.Duration(us * float64(time.Microsecond))) }

func pct(r float64) string { return fmt.Sprintf("%.2f%%", 100*r) }

// printLive writes one block of the live table: one line per instance.
func printLive(out io.Writer, phase string, elapsed time.Duration, w *workload, rows []liveRow) {
	fmt.Fprintf(out, "%s  t=%v\n", phase, elapsed)
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprint(tw, "node\treads\thit\tdb loads\tinval recv/appl\tprop p50/p99\tstale\ttrusted\t\n")
	for i, r := range rows {
		reads, stale, _, _, _ := w.instanceTotals(i)
		inval, prop, trusted := "-", "-", "-"
		if r.invalidations {
			inval = fmt.Sprintf("%d/%d", r.received, r.applied)
			prop = fmtDur(r.propP50) + "/" + fmtDur(r.propP99)
			trusted = "no"
			if r.trusted {
				trusted = "yes"
			}
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%d\t%s\t%s\t%d\t%s\t\n",
			r.name, reads, pct(ratio(r.hits, r.lookups)), r.loads, inval, prop, stale, trusted)
	}
	tw.Flush()
}

// printVerdict writes the side-by-side comparison of the two phases.
func printVerdict(out io.Writer, cfg Config, res Result) {
	nc, nv := res.Nearcache, res.Naive
	fmt.Fprintf(out, "\nverdict: the same seeded workload (%d instances x %d workers, %d keys, %.0f%% writes, +%v per query)\n",
		cfg.Nodes, cfg.Workers, cfg.Keys, 100*cfg.WriteRatio, max(cfg.Latency, 0))
	fmt.Fprintf(out, "  nearcache: invalidations acknowledged by every node (AckAll)\n")
	fmt.Fprintf(out, "  naive:     map+mutex cache-aside per instance, TTL %v, a writer drops only its own copy\n\n", cfg.TTL)
	tw := tabwriter.NewWriter(out, 0, 0, 3, ' ', 0)
	fmt.Fprintf(tw, "\tnearcache\tnaive\t\n")
	fmt.Fprintf(tw, "ran\t%.1fs\t%.1fs\t\n", nc.Seconds, nv.Seconds)
	fmt.Fprintf(tw, "reads\t%d\t%d\t\n", nc.Reads, nv.Reads)
	fmt.Fprintf(tw, "hit ratio\t%s\t%s\t\n", pct(nc.HitRatio), pct(nv.HitRatio))
	fmt.Fprintf(tw, "DB loads\t%d\t%d\t\n", nc.DBLoads, nv.DBLoads)
	fmt.Fprintf(tw, "writes\t%d\t%d\t\n", nc.Writes, nv.Writes)
	fmt.Fprintf(tw, "stale reads\t%d (%s)\t%d (%s)\t\n", nc.StaleReads, pct(nc.StaleRate), nv.StaleReads, pct(nv.StaleRate))
	fmt.Fprintf(tw, "read p50 / p99\t%s / %s\t%s / %s\t\n",
		fmtMicros(nc.ReadP50us), fmtMicros(nc.ReadP99us), fmtMicros(nv.ReadP50us), fmtMicros(nv.ReadP99us))
	fmt.Fprintf(tw, "propagation p50 / p99\t%s / %s\t-\t\n", fmtMicros(nc.PropagationP50us), fmtMicros(nc.PropagationP99us))
	tw.Flush()
	fmt.Fprintln(out)
	switch {
	case nc.StaleReads > 0:
		fmt.Fprintf(out, "FAIL: nearcache served %d stale reads.\n", nc.StaleReads)
	case nv.StaleReads > 0:
		fmt.Fprintf(out, "nearcache served no stale read; the naive caches served %d (%s of reads) after the write had returned.\n",
			nv.StaleReads, pct(nv.StaleRate))
	default:
		fmt.Fprintf(out, "nearcache served no stale read; the naive caches were lucky this time (try more writes, fewer keys or a longer run).\n")
	}
}
