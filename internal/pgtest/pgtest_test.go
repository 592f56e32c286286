package pgtest

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestStart starts a server and runs a statement on it; the cleanup must stop
// it (goleak checks that the waiting goroutine ended).
func TestStart(t *testing.T) {
	dsn := Start(t)
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRowContext(context.Background(), "SELECT 40 + 2").Scan(&n); err != nil || n != 42 {
		t.Fatalf("SELECT 40 + 2 = %d, %v", n, err)
	}
}

func TestFindBinaries(t *testing.T) {
	fake := func(t *testing.T, root string, versions map[string][]string) string {
		for v, names := range versions {
			bin := filepath.Join(root, v, "bin")
			if err := os.MkdirAll(bin, 0o755); err != nil {
				t.Fatal(err)
			}
			for _, n := range names {
				if err := os.WriteFile(filepath.Join(bin, n), []byte("#!/bin/sh\n"), 0o755); err != nil {
					t.Fatal(err)
				}
			}
		}
		return filepath.Join(root, "*", "bin")
	}
	both := []string{"initdb", "postgres"}
	tests := []struct {
		name     string
		versions map[string][]string
		want     string // version directory chosen; "" = error
	}{
		{"none installed", nil, ""},
		{"one version", map[string][]string{"15": both}, "15"},
		{"newest by number, not by string", map[string][]string{"9.6": both, "15": both, "13": both}, "15"},
		{"skips a version without postgres", map[string][]string{"16": {"initdb"}, "14": both}, "14"},
		{"only client tools", map[string][]string{"16": {"psql"}}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("PATH", t.TempDir()) // nothing on PATH: the glob must be used
			glob := fake(t, t.TempDir(), tc.versions)
			initdb, postgres, err := findBinaries(glob)
			if tc.want == "" {
				if err == nil {
					t.Fatalf("findBinaries = %s, %s; want an error", initdb, postgres)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := versionOf(filepath.Dir(initdb)); got != tc.want || filepath.Base(postgres) != "postgres" || filepath.Dir(postgres) != filepath.Dir(initdb) {
				t.Errorf("findBinaries = %s, %s; want version %s", initdb, postgres, tc.want)
			}
		})
	}
}

// TestFindBinariesPrefersPath: binaries on PATH win over the glob.
func TestFindBinariesPrefersPath(t *testing.T) {
	path := t.TempDir()
	for _, n := range []string{"initdb", "postgres"} {
		if err := os.WriteFile(filepath.Join(path, n), []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("PATH", path)
	initdb, _, err := findBinaries(filepath.Join(t.TempDir(), "*", "bin"))
	if err != nil || filepath.Dir(initdb) != path {
		t.Errorf("findBinaries = %s, %v; want the one in %s", initdb, err, path)
	}
}

func TestCompareVersions(t *testing.T) {
	tests := []struct {
		a, b string
		sign int
	}{
		{"15", "15", 0},
		{"9.6", "15", -1},
		{"16", "15", 1},
		{"9.6", "9.5", 1},
		{"10", "10.1", -1},
	}
	for _, tc := range tests {
		t.Run(tc.a+"_vs_"+tc.b, func(t *testing.T) {
			got := compareVersions(tc.a, tc.b)
			if (got > 0) != (tc.sign > 0) || (got < 0) != (tc.sign < 0) {
				t.Errorf("compareVersions(%q, %q) = %d, want sign %d", tc.a, tc.b, got, tc.sign)
			}
		})
	}
}

// TestStartLogical checks that the Logical option turns on logical decoding.
func TestStartLogical(t *testing.T) {
	dsn := StartWith(t, Options{Logical: true})
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var level string
	if err := db.QueryRowContext(context.Background(), "SHOW wal_level").Scan(&level); err != nil || level != "logical" {
		t.Fatalf("wal_level = %q, %v; want logical", level, err)
	}
}

// TestRestart stops and starts a server: the data survives.
func TestRestart(t *testing.T) {
	s := StartServer(t, Options{})
	db, err := sql.Open("pgx", s.DSN)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec("CREATE TABLE kept (v int); INSERT INTO kept VALUES (7)"); err != nil {
		t.Fatal(err)
	}
	s.Stop()
	if err := db.PingContext(context.Background()); err == nil {
		t.Fatal("a stopped server answered")
	}
	s.Start()
	var v int
	if err := db.QueryRow("SELECT v FROM kept").Scan(&v); err != nil || v != 7 {
		t.Fatalf("after restart: %d, %v", v, err)
	}
}
