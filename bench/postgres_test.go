package bench

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"github.com/nearcache/nearcache/internal/needs"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nearcache/nearcache/internal/pgtest"
)

// TestPostgres runs the PostgreSQL source against a throwaway server
// (pgtest.Start; skipped only when PostgreSQL is not installed, which
// make bench-deps fixes): the source itself, a 100k-row load, a DSN that
// cannot connect, and the smoke run of every strategy on it.
func TestPostgres(t *testing.T) {
	dsn := pgtest.Start(t)
	ctx := context.Background()
	admin, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	benchTables := func(t *testing.T) int {
		t.Helper()
		var n int
		if err := admin.QueryRowContext(ctx, "SELECT count(*) FROM pg_tables WHERE tablename LIKE 'nearcache_bench_%'").Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}

	t.Run("source", func(t *testing.T) {
		// Latency: time.Hour is SQLite's only; were it added here, the
		// first Read would fail on this deadline.
		ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		src, err := OpenSource(ctx, SourceConfig{DSN: dsn, Keys: 10, ValueSize: 16, Latency: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		defer src.Close()
		if src.Kind() != "postgres" || src.Latency() > 0 {
			t.Errorf("Kind, Latency = %s, %v; want postgres and none added (Latency: time.Hour is SQLite only)", src.Kind(), src.Latency())
		}
		v, err := src.Read(ctx, Key(3))
		if err != nil {
			t.Fatal(err)
		}
		if want := src.body(1); v.Version != 1 || string(v.Body) != string(want) {
			t.Errorf("seeded row = version %d, body %q; want 1, %q", v.Version, v.Body, want)
		}
		for want := uint64(2); want <= 4; want++ {
			if got, err := src.Write(ctx, Key(3)); err != nil || got != want {
				t.Fatalf("Write = %d, %v; want %d", got, err, want)
			}
		}
		if v, err := src.Read(ctx, Key(3)); err != nil || v.Version != 4 {
			t.Errorf("Read after 3 writes = version %d, %v; want 4", v.Version, err)
		}
		if v, err := src.Read(ctx, Key(4)); err != nil || v.Version != 1 {
			t.Errorf("Read of an untouched row = version %d, %v; want 1", v.Version, err)
		}
		if _, err := src.Read(ctx, Key(10)); !errors.Is(err, ErrNotFound) {
			t.Errorf("Read of a missing key: %v, want ErrNotFound", err)
		}
		if _, err := src.Write(ctx, "nope"); !errors.Is(err, ErrNotFound) {
			t.Errorf("Write of a missing key: %v, want ErrNotFound", err)
		}
		if src.Reads() != 4 || src.Writes() != 4 {
			t.Errorf("counted %d reads, %d writes; want 4, 4", src.Reads(), src.Writes())
		}
	})

	// Concurrent writers of one row each get a version of their own, and
	// each writer's versions increase: the row lock serialises the UPDATEs.
	t.Run("concurrent writers", func(t *testing.T) {
		src, err := OpenSource(ctx, SourceConfig{DSN: dsn, Keys: 2})
		if err != nil {
			t.Fatal(err)
		}
		defer src.Close()
		const writers, each = 8, 25
		got := make([][]uint64, writers)
		var wg sync.WaitGroup
		for w := range writers {
			wg.Go(func() {
				for range each {
					v, err := src.Write(ctx, Key(1))
					if err != nil {
						t.Error(err)
						return
					}
					got[w] = append(got[w], v)
				}
			})
		}
		wg.Wait()
		var all []uint64
		for w, vs := range got {
			if !slices.IsSorted(vs) {
				t.Errorf("writer %d saw versions out of order: %v", w, vs)
			}
			all = append(all, vs...)
		}
		slices.Sort(all)
		for i, v := range all {
			if v != uint64(i+2) {
				t.Fatalf("versions handed out = %v; want each of 2..%d exactly once", all, writers*each+1)
			}
		}
		if v, err := src.Read(ctx, Key(1)); err != nil || v.Version != writers*each+1 {
			t.Errorf("Read after %d writes = version %d, %v; want %d", writers*each, v.Version, err, writers*each+1)
		}
	})

	t.Run("load 100k rows and drop on close", func(t *testing.T) {
		before := benchTables(t)
		start := time.Now()
		src, err := OpenSource(ctx, SourceConfig{DSN: dsn})
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("seeded %d rows in %v", src.Keys(), time.Since(start).Round(time.Millisecond))
		if v, err := src.Read(ctx, Key(99999)); err != nil || v.Version != 1 || len(v.Body) != 100 {
			t.Errorf("last row = version %d, %d bytes, %v; want 1, 100", v.Version, len(v.Body), err)
		}
		if _, err := src.Read(ctx, Key(100000)); !errors.Is(err, ErrNotFound) {
			t.Errorf("row past the last: %v, want ErrNotFound", err)
		}
		if n := benchTables(t); n != before+1 {
			t.Errorf("%d bench tables while open, want %d", n, before+1)
		}
		if err := src.Close(); err != nil {
			t.Fatal(err)
		}
		if n := benchTables(t); n != before {
			t.Errorf("%d bench tables after Close, want %d: Close must drop its table", n, before)
		}
	})

	t.Run("cannot connect", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close() // nothing listens there now
		bad := fmt.Sprintf("postgres://nc:secret@%s/postgres?sslmode=disable&connect_timeout=2", addr)
		_, err = OpenSource(ctx, SourceConfig{DSN: bad})
		if err == nil || !strings.Contains(err.Error(), "cannot connect to PostgreSQL at "+addr) || strings.Contains(err.Error(), "secret") {
			t.Errorf("OpenSource on a closed port = %v; want an error naming %s and not the password", err, addr)
		}
		// Run fails before starting Redis or any strategy.
		rep, err := Run(ctx, Config{SourceDSN: bad, Strategies: []string{"redis"}, Workloads: []Workload{{Name: "w", Duration: time.Second}}})
		if err == nil || rep != nil || !strings.Contains(err.Error(), "cannot connect") {
			t.Errorf("Run with an unreachable DSN = %v, %v; want no report and the connection error", rep, err)
		}
	})

	// The smoke run on PostgreSQL: the same assertions as TestSmoke, shorter
	// windows (PostgreSQL adds no artificial latency, so each operation is
	// cheaper and a second sees plenty of them). Every strategy.
	t.Run("smoke", func(t *testing.T) {
		if testing.Short() {
			t.Skip("starts redis-server, gcpeer processes and nearcache clusters")
		}
		cfg := smokeConfig(t.TempDir(), 800*time.Millisecond, 600*time.Millisecond)
		cfg.SourceDSN = dsn
		cfg.Latency = time.Hour // SQLite only: must not slow PostgreSQL down
		rctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		defer cancel()
		before := benchTables(t)
		rep, err := Run(rctx, cfg)
		if errors.Is(err, ErrNoRedis) {
			needs.Missing(t, "redis-server", "make bench-deps (apt-get install redis-server)")
		}
		if err != nil {
			t.Fatal(err)
		}
		if rep.Source != "postgres" || rep.SourceAddr == "" || strings.Contains(rep.SourceAddr, "nc@") || rep.Latency > 0 {
			t.Errorf("report source = %q %q, latency %v; want postgres, its address without user, none added", rep.Source, rep.SourceAddr, rep.Latency)
		}
		checkSmoke(t, rep, cfg.Instances, cfg.Strategies)
		if n := benchTables(t); n != before {
			t.Errorf("%d bench tables left after Run, want %d", n, before)
		}
	})
}
