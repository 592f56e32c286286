package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"text/tabwriter"
	"time"
)

// WriteTable writes rep as a terminal table, one block per workload.
func WriteTable(w io.Writer, rep *Report) error {
	fmt.Fprintf(w, "nearcache bench: %d instances, source %s, %s, %d CPUs, seed %d, nearcache ack-all %v\n",
		rep.Instances, sourceStr(rep), rep.GoVersion, rep.NumCPU, rep.Seed, rep.AckAll)
	var tw *tabwriter.Writer
	last := ""
	for _, r := range rep.Results {
		if r.Workload != last {
			if tw != nil {
				if err := tw.Flush(); err != nil {
					return err
				}
			}
			last = r.Workload
			fmt.Fprintf(w, "\n%s\n", r.Workload)
			tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
			fmt.Fprintln(tw, "strategy\treads/s\tp50\tp99\tp999\tdb q/s\tq/expiry\tstale\tstale rate\tstaleness p99\tmax\theap/inst\text mem\trestart\t")
		}
		perExp := "-"
		if r.Expiries > 0 {
			perExp = fmt.Sprintf("%.1f", r.DBQueriesPerExpiry)
		}
		fmt.Fprintf(tw, "%s\t%.0f\t%s\t%s\t%s\t%.0f\t%s\t%d\t%.3f%%\t%s\t%s\t%s\t%s\t%s\t\n",
			r.Strategy, r.ReadsPerSec, dur(r.ReadP50), dur(r.ReadP99), dur(r.ReadP999),
			r.DBQueriesPerSec, perExp, r.StaleReads, 100*r.StaleRate, dur(r.StalenessP99), dur(r.StalenessMax),
			bytesStr(r.HeapPerInstance), bytesStr(r.ExternalMemory), dur(r.Restart))
	}
	if tw != nil {
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	for _, r := range rep.Results {
		if r.Errors > 0 {
			fmt.Fprintf(w, "note: %s on %s: %d errors, first: %s\n", r.Strategy, r.Workload, r.Errors, r.FirstError)
		}
	}
	return nil
}

// sourceStr names the report's source of truth and its added latency.
func sourceStr(rep *Report) string {
	name := "SQLite"
	if rep.Source == "postgres" {
		name = "PostgreSQL " + rep.SourceAddr
	}
	if rep.Latency <= 0 {
		return name + " (no added latency)"
	}
	return fmt.Sprintf("%s + %v added per query", name, rep.Latency)
}

// dur prints a duration with 3 significant digits; "-" for 0.
func dur(d time.Duration) string {
	switch {
	case d == 0:
		return "-"
	case d < time.Microsecond:
		return fmt.Sprintf("%dns", d)
	case d < time.Millisecond:
		return fmt.Sprintf("%.3gµs", float64(d)/1e3)
	case d < time.Second:
		return fmt.Sprintf("%.3gms", float64(d)/1e6)
	}
	return fmt.Sprintf("%.3gs", d.Seconds())
}

func bytesStr(n int64) string {
	switch {
	case n == 0:
		return "-"
	case n < 0:
		return "~0"
	case n < 1<<20:
		return fmt.Sprintf("%.0fKiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%.1fMiB", float64(n)/(1<<20))
}

// WriteJSON writes rep to file as indented JSON (schema in README.md).
func WriteJSON(file string, rep *Report) error {
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	if err := os.WriteFile(file, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	return nil
}
