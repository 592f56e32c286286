package bench

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nearcache/nearcache/internal/hist"
)

// fakeReport is two strategies on one workload with writes.
func fakeReport() *Report {
	var h hist.Histogram
	for i := range 1000 {
		h.Record(time.Duration(i) * time.Microsecond)
	}
	rep := &Report{Source: "sqlite", Instances: 4, Latency: time.Millisecond, GoVersion: "go", NumCPU: 2, Seed: 1}
	for _, s := range []string{"redis", "nearcache"} {
		rep.Results = append(rep.Results, Result{
			Strategy: s, Workload: "w", Instances: 4, Seconds: 1, Reads: 1000, Writes: 10,
			ReadP50: h.Quantile(0.5), StaleReads: 3, StaleRate: 0.003, StalenessMax: 5 * time.Millisecond,
			Latency: h.Distribution(), DBSeries: []float64{10, 0, 30}, Expiries: 10, DBQueriesPerExpiry: 1,
		})
	}
	return rep
}

// TestWriteJSONSchema checks that the JSON carries every field README.md
// documents, so the two cannot drift apart.
func TestWriteJSONSchema(t *testing.T) {
	file := filepath.Join(t.TempDir(), "r.json")
	if err := WriteJSON(file, fakeReport()); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(b, &top); err != nil {
		t.Fatal(err)
	}
	var results []map[string]json.RawMessage
	if err := json.Unmarshal(top["results"], &results); err != nil || len(results) != 2 {
		t.Fatalf("results: %v (%d)", err, len(results))
	}
	for _, k := range []string{"started", "source", "instances", "db_latency_ns", "value_size", "seed", "nearcache_ack_all", "go_version", "num_cpu"} {
		if _, ok := top[k]; !ok {
			t.Errorf("report has no %q", k)
		}
	}
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	for k := range top {
		if !strings.Contains(string(readme), `"`+k+`"`) {
			t.Errorf("report field %q is not documented in README.md", k)
		}
	}
	for k := range results[0] {
		if !strings.Contains(string(readme), `"`+k+`"`) {
			t.Errorf("result field %q is not documented in README.md", k)
		}
	}
	for _, k := range []string{"strategy", "reads_per_sec", "read_p50_ns", "read_p999_ns", "db_queries_per_sec", "db_queries_per_expiry", "stale_rate", "staleness_max_ns", "heap_per_instance_bytes", "read_latency_quantiles", "db_queries_per_sec_series"} {
		if _, ok := results[0][k]; !ok {
			t.Errorf("result has no %q", k)
		}
	}
}

func TestWriteTableAndPlots(t *testing.T) {
	rep := fakeReport()
	var buf bytes.Buffer
	if err := WriteTable(&buf, rep); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"nearcache", "redis", "0.300%", "5ms"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, buf.String())
		}
	}
	dir := t.TempDir()
	files, err := WritePlots(dir, rep)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"latency-w.png", "dbload-w.png", "stale-rate.png", "staleness-max.png"}
	if strings.Join(files, ",") != strings.Join(want, ",") {
		t.Fatalf("plots %v, want %v", files, want)
	}
	for _, f := range files {
		b, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil || !bytes.HasPrefix(b, []byte("\x89PNG")) {
			t.Errorf("%s is not a PNG: %v", f, err)
		}
	}
}

// TestRedisMissing checks the message when redis-server is not installed.
func TestRedisMissing(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	_, err := Run(t.Context(), Config{Strategies: []string{"redis"}, Workloads: []Workload{{Name: "w", Duration: time.Second}}})
	if !errors.Is(err, ErrNoRedis) || !strings.Contains(err.Error(), "make bench-deps") {
		t.Fatalf("Run without redis-server: %v, want ErrNoRedis naming make bench-deps", err)
	}
}

// TestTableHeaderSource: the header names the source and the latency added
// to it, and never a DSN's credentials.
func TestTableHeaderSource(t *testing.T) {
	tests := []struct {
		name    string
		source  string
		addr    string
		latency time.Duration
		want    string
	}{
		{"sqlite with latency", "sqlite", "", time.Millisecond, "source SQLite + 1ms added per query,"},
		{"sqlite without latency", "sqlite", "", -1, "source SQLite (no added latency),"},
		{"postgres", "postgres", "db.internal:5432/app", -1, "source PostgreSQL db.internal:5432/app (no added latency),"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rep := fakeReport()
			rep.Source, rep.SourceAddr, rep.Latency = tc.source, tc.addr, tc.latency
			var buf bytes.Buffer
			if err := WriteTable(&buf, rep); err != nil {
				t.Fatal(err)
			}
			if header, _, _ := strings.Cut(buf.String(), "\n"); !strings.Contains(header, tc.want) {
				t.Errorf("header %q lacks %q", header, tc.want)
			}
		})
	}
}

func TestPostgresAddr(t *testing.T) {
	tests := []struct{ dsn, want string }{
		{"postgres://nc:secret@127.0.0.1:5432/postgres?sslmode=disable", "127.0.0.1:5432/postgres"},
		{"postgresql://db.internal/app", "db.internal/app"},
		{"postgres://%zz", "PostgreSQL"},
	}
	for _, tc := range tests {
		t.Run(tc.dsn, func(t *testing.T) {
			if got := PostgresAddr(tc.dsn); got != tc.want {
				t.Errorf("PostgresAddr(%q) = %q, want %q", tc.dsn, got, tc.want)
			}
		})
	}
}
