package bench

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"
)

func TestTrackerStale(t *testing.T) {
	// key 0: v2 completed at 100, v3 at 300. key 1: v5 completed at 200 before v4 at 250.
	tests := []struct {
		name    string
		key     int
		version uint64
		began   int64
		stale   bool
		by      time.Duration
	}{
		{"current version", 0, 3, 400, false, 0},
		{"old version, read began before the write completed", 0, 1, 50, false, 0},
		{"old version, read began after", 0, 1, 150, true, 50},
		{"v2 after v3 completed", 0, 2, 350, true, 50},
		{"v2 before v3 completed", 0, 2, 250, false, 0},
		{"older than the run's first completed write", 1, 2, 210, true, 10},
		{"out-of-order completion: v4 superseded by v5's", 1, 4, 260, true, 60},
		{"untouched key", 2, 1, 1000, false, 0},
	}
	tr := newTracker(3, time.Now())
	tr.written(0, 2, 100)
	tr.written(0, 3, 300)
	tr.written(1, 5, 200)
	tr.written(1, 4, 250)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			stale, by := tr.stale(tc.key, tc.version, tc.began)
			if stale != tc.stale || by != tc.by {
				t.Errorf("stale(k%d, v%d, began %d) = %v, %v; want %v, %v", tc.key, tc.version, tc.began, stale, by, tc.stale, tc.by)
			}
		})
	}
}

func TestSource(t *testing.T) {
	ctx := context.Background()
	src, err := OpenSource(ctx, SourceConfig{Dir: t.TempDir(), Keys: 10, ValueSize: 16, Latency: 2 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	start := time.Now()
	v, err := src.Read(ctx, Key(3))
	if err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took < 2*time.Millisecond {
		t.Errorf("Read took %v, less than the added latency", took)
	}
	if v.Version != 1 || len(v.Body) != 16 {
		t.Errorf("seeded row = version %d, %d bytes; want 1, 16", v.Version, len(v.Body))
	}
	for want := uint64(2); want <= 4; want++ {
		got, err := src.Write(ctx, Key(3))
		if err != nil || got != want {
			t.Fatalf("Write = %d, %v; want %d", got, err, want)
		}
	}
	if v, _ := src.Read(ctx, Key(3)); v.Version != 4 {
		t.Errorf("Read after 3 writes = version %d, want 4", v.Version)
	}
	if _, err := src.Read(ctx, "nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Read of a missing key: %v, want ErrNotFound", err)
	}
	if src.Reads() != 3 || src.Writes() != 3 {
		t.Errorf("counted %d reads, %d writes; want 3, 3", src.Reads(), src.Writes())
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		ok   bool
	}{
		{"defaults", Config{}, true},
		{"unknown strategy", Config{Strategies: []string{"memcached"}}, false},
		{"negative instances", Config{Instances: -1}, false},
		{"workload without duration", Config{Workloads: []Workload{{Name: "w"}}}, false},
		{"write share of 1", Config{Workloads: []Workload{{Name: "w", Duration: time.Second, WriteFrac: 1}}}, false},
		{"zipf exponent 1", Config{Workloads: []Workload{{Name: "w", Duration: time.Second, ZipfS: 1}}}, false},
		{"postgres DSN", Config{SourceDSN: "postgres://u@h/db"}, true},
		{"postgresql DSN", Config{SourceDSN: "postgresql://u@h/db"}, true},
		{"other DSN", Config{SourceDSN: "mysql://u@h/db"}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.cfg.validate(); (err == nil) != tc.ok {
				t.Errorf("validate() = %v, want ok=%v", err, tc.ok)
			}
		})
	}
}

func TestSourceConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  SourceConfig
		ok   bool
	}{
		{"sqlite", SourceConfig{Dir: "d"}, true},
		{"sqlite without Dir", SourceConfig{}, false},
		{"postgres needs no Dir", SourceConfig{DSN: "postgres://u@h/db"}, true},
		{"not postgres", SourceConfig{DSN: "sqlite:///tmp/x"}, false},
		{"negative keys", SourceConfig{Dir: "d", Keys: -1}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.cfg.validate(); (err == nil) != tc.ok {
				t.Errorf("validate() = %v, want ok=%v", err, tc.ok)
			}
		})
	}
	// The added latency is SQLite's only.
	if got := (SourceConfig{DSN: "postgres://u@h/db", Latency: time.Second}).withDefaults().Latency; got > 0 {
		t.Errorf("postgres source latency = %v, want none", got)
	}
	if got := (Config{SourceDSN: "postgres://u@h/db", Latency: time.Second}).withDefaults().Latency; got > 0 {
		t.Errorf("postgres run latency = %v, want none", got)
	}
}

func FuzzDecodeValue(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{0, 0, 0, 0, 0, 0, 0, 7})
	f.Add(encodeValue(Value{Body: []byte("hello"), Version: 42}))
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := decodeValue(b)
		if err != nil {
			if len(b) >= 8 {
				t.Fatalf("rejected %d bytes: %v", len(b), err)
			}
			return
		}
		if !bytes.Equal(encodeValue(v), b) {
			t.Fatalf("round trip changed %x", b)
		}
	})
}
