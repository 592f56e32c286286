package demo

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestRunVerdict runs the whole demo, small: a 3-node cluster for 3s, the
// naive caches for 2s, 50 keys, 20% writes.
//
// Why the naive caches must serve stale reads here: each instance caches a
// key on its first read of it and, with a 5s TTL and a 2s run, never expires
// it; only writes through the same instance drop it. With 50 Zipf keys and a
// fifth of ~thousands of operations being writes spread over 3 instances, the
// hot keys are written through one instance and then read on another that
// still holds the pre-write version, within milliseconds, many times over.
// nearcache must serve none: each write returns only once every node
// acknowledged its invalidation.
func TestRunVerdict(t *testing.T) {
	var out, prog bytes.Buffer
	// A private TMPDIR: other test processes (cmd/nearcache runs the demo too)
	// create demo directories in the shared one at the same time.
	t.Setenv("TMPDIR", t.TempDir())
	before := demoDirs(t)
	res, err := Run(t.Context(), Config{
		Nodes:         3,
		Duration:      3 * time.Second,
		NaiveDuration: 2 * time.Second,
		Latency:       time.Millisecond,
		WriteRatio:    0.2,
		Keys:          50,
		TTL:           5 * time.Second,
		Seed:          7,
		Out:           &out,
		Progress:      &prog,
	})
	t.Log(prog.String() + out.String())
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	nc, nv := res.Nearcache, res.Naive
	if nc.Reads == 0 || nc.Writes == 0 {
		t.Errorf("nearcache reads/writes = %d/%d, want both > 0", nc.Reads, nc.Writes)
	}
	if nc.StaleReads != 0 {
		t.Errorf("nearcache stale reads = %d, want 0", nc.StaleReads)
	}
	if nv.Reads == 0 || nv.StaleReads == 0 {
		t.Errorf("naive reads/stale = %d/%d, want both > 0", nv.Reads, nv.StaleReads)
	}
	if nc.InvalidationsApplied == 0 || nc.PropagationP99us == 0 {
		t.Errorf("nearcache applied %d invalidations, propagation p99 %vµs: want both > 0", nc.InvalidationsApplied, nc.PropagationP99us)
	}
	if nc.DBLoads == 0 || nc.HitRatio <= 0 || nc.HitRatio > 1 {
		t.Errorf("nearcache DB loads %d, hit ratio %v: want > 0 and in (0, 1]", nc.DBLoads, nc.HitRatio)
	}
	if len(nc.Instances) != 3 || len(nv.Instances) != 3 {
		t.Errorf("instances = %d/%d, want 3/3", len(nc.Instances), len(nv.Instances))
	}
	// The live table ran, and the verdict names both.
	for _, want := range []string{"nearcache  t=1s", "naive  t=1s", "stale reads", "nearcache served no stale read"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q", want)
		}
	}
	// A line before each slow start-up step, in order, and nothing else.
	wantProg := "nearcache demo: seeding 50 rows into SQLite (nearcache.db)...\n" +
		"nearcache demo: waiting until the 3 nodes see each other and trust their caches (up to 15s)...\n" +
		"nearcache demo: seeding 50 rows into SQLite (naive.db)...\n"
	if prog.String() != wantProg {
		t.Errorf("Progress got\n%s\nwant\n%s", prog.String(), wantProg)
	}
	// The JSON has the promised shape.
	b, err := json.Marshal(res)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"reads", "stale_reads", "hit_ratio", "db_loads", "read_p99_us"} {
		if _, ok := m["nearcache"][k]; !ok {
			t.Errorf("JSON nearcache lacks %q", k)
		}
		if _, ok := m["naive"][k]; !ok {
			t.Errorf("JSON naive lacks %q", k)
		}
	}
	if m["config"]["nodes"] != 3.0 || m["config"]["ttl"] != "5s" {
		t.Errorf("JSON config = %v", m["config"])
	}
	// The temporary directory is gone.
	if after := demoDirs(t); len(after) != len(before) {
		t.Errorf("temporary directories before %v, after %v", before, after)
	}
}

func demoDirs(t *testing.T) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(os.TempDir(), "nearcache-demo-*"))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestRunInterrupted(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	var out syncBuffer
	done := make(chan error, 1)
	go func() {
		_, err := Run(ctx, Config{Nodes: 2, Duration: time.Minute, Keys: 20, Out: &out})
		done <- err
	}()
	// Cancel once the workload runs: the live table has printed.
	for !strings.Contains(out.String(), "nearcache  t=1s") {
		select {
		case err := <-done:
			t.Fatalf("Run returned before the workload ran: %v\n%s", err, out.String())
		case <-time.After(10 * time.Millisecond):
		}
	}
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Run after cancel = %v, want context.Canceled", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Run did not return within 20s of its context's end")
	}
}
