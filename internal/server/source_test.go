package server

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/nearcache/nearcache/loader"
)

func TestParseDSN(t *testing.T) {
	tests := []struct {
		dsn, wantDriver, wantDSN, wantErr string
	}{
		{dsn: "sqlite:///var/lib/nc/db", wantDriver: "sqlite", wantDSN: "file:/var/lib/nc/db?" + sqliteParams},
		{dsn: "sqlite://rel.db?_pragma=synchronous(OFF)", wantDriver: "sqlite", wantDSN: "file:rel.db?" + sqliteParams + "&_pragma=synchronous(OFF)"},
		{dsn: "postgres://u:p@db:5432/app?sslmode=disable", wantDriver: "pgx", wantDSN: "postgres://u:p@db:5432/app?sslmode=disable"},
		{dsn: "postgresql://db/app", wantDriver: "pgx", wantDSN: "postgresql://db/app"},
		{dsn: "sqlite://", wantErr: "no file path"},
		{dsn: "", wantErr: "DSN is required"},
		{dsn: "mysql://db/app", wantErr: `scheme "mysql" is not supported`},
		{dsn: "/var/lib/nc/db", wantErr: "not supported"},
	}
	for _, tt := range tests {
		t.Run(tt.dsn, func(t *testing.T) {
			driver, dsn, err := parseDSN(tt.dsn)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("parseDSN(%q) error = %v, want %q", tt.dsn, err, tt.wantErr)
				}
				return
			}
			if err != nil || driver != tt.wantDriver || dsn != tt.wantDSN {
				t.Errorf("parseDSN(%q) = %q, %q, %v; want %q, %q", tt.dsn, driver, dsn, err, tt.wantDriver, tt.wantDSN)
			}
		})
	}
}

func TestQueriesPlaceholders(t *testing.T) {
	tests := []struct{ driver, wantLoad, wantWrite string }{
		{"sqlite", "SELECT body, version FROM t WHERE id = ?", "VALUES (?, ?, 1) ON CONFLICT (id) DO UPDATE SET body = excluded.body, version = t.version + 1 RETURNING version"},
		{"pgx", "SELECT body, version FROM t WHERE id = $1", "VALUES ($1, $2, 1) ON CONFLICT (id) DO UPDATE SET body = excluded.body, version = t.version + 1 RETURNING version"},
	}
	for _, tt := range tests {
		t.Run(tt.driver, func(t *testing.T) {
			load, _, write := queries(tt.driver, "t")
			if load != tt.wantLoad || !strings.HasSuffix(write, tt.wantWrite) {
				t.Errorf("queries(%s) = %q, %q", tt.driver, load, write)
			}
		})
	}
}

func TestOpenSourceRejects(t *testing.T) {
	ctx := context.Background()
	wrong := filepath.Join(t.TempDir(), "wrong.db")
	db, err := sql.Open("sqlite", wrong)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec("CREATE TABLE items (id TEXT PRIMARY KEY, data TEXT)"); err != nil {
		t.Fatal(err)
	}
	db.Close()
	for _, tt := range []struct{ name, dsn, table, want string }{
		{"injection in table", "sqlite:///x.db", "items; DROP TABLE users", "not a plain SQL identifier"},
		{"empty table", "sqlite:///x.db", "", "not a plain SQL identifier"},
		{"bad scheme", "redis://x", "items", "not supported"},
		{"table without version", "sqlite://" + wrong, "items", "want columns id, body, version"},
		{"unreachable directory", "sqlite://" + filepath.Join(t.TempDir(), "no", "such", "dir", "db"), "items", "source does not answer"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s, err := OpenSource(ctx, tt.dsn, tt.table)
			if err == nil {
				s.Close()
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("OpenSource = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestSourceSQLite(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "db")
	s, err := OpenSource(ctx, "sqlite://"+path, "things")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	// A second process (here: a second *sql.DB) opens the same file: the
	// table exists already, and both see each other's writes.
	s2, err := OpenSource(ctx, "sqlite://"+path, "things")
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()

	if _, _, err := s.Load(ctx, "k"); !loader.IsNotFound(err) {
		t.Errorf("Load of a missing row = %v, want not found", err)
	}
	if _, err := s.LoadVersion(ctx, "k"); !loader.IsNotFound(err) {
		t.Errorf("LoadVersion of a missing row = %v, want not found", err)
	}
	for i, body := range []string{"a", "b", "c"} {
		src := []*Source{s, s2}[i%2]
		v, err := src.Write(ctx, "k", body)
		if err != nil || v != uint64(i+1) {
			t.Fatalf("Write #%d = %d, %v, want version %d", i+1, v, err, i+1)
		}
	}
	it, ver, err := s2.Load(ctx, "k")
	if err != nil || it != (Item{Body: "c", Version: 3}) || ver != 3 {
		t.Errorf("Load = %+v, %d, %v, want {c 3}, 3", it, ver, err)
	}
	if v, err := s.LoadVersion(ctx, "k"); err != nil || v != 3 {
		t.Errorf("LoadVersion = %d, %v, want 3", v, err)
	}

	// Concurrent writers from both handles each get a distinct version.
	const writers = 8
	var wg sync.WaitGroup
	got := make(chan uint64, writers)
	for i := range writers {
		wg.Go(func() {
			v, err := []*Source{s, s2}[i%2].Write(ctx, "k", "w")
			if err != nil {
				t.Error(err)
			}
			got <- v
		})
	}
	wg.Wait()
	close(got)
	seen := map[uint64]bool{}
	for v := range got {
		if seen[v] || v < 4 || v > 3+writers {
			t.Errorf("version %d repeated or out of 4..%d", v, 3+writers)
		}
		seen[v] = true
	}
}

// TestOpenSourceProcesses opens one fresh SQLite file from several processes
// at once, as the nodes of a cluster starting together do: the losers of the
// race to switch the file to WAL get SQLITE_BUSY and must retry, not fail.
func TestOpenSourceProcesses(t *testing.T) {
	if dsn := os.Getenv("NEARCACHE_TEST_OPEN_DSN"); dsn != "" { // a child
		s, err := OpenSource(context.Background(), dsn, "items")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		s.Close()
		os.Exit(0)
	}
	if testing.Short() {
		t.Skip("starts processes")
	}
	for round := range 3 {
		dsn := "sqlite://" + filepath.Join(t.TempDir(), fmt.Sprint("db", round))
		cmds := make([]*exec.Cmd, 4)
		outs := make([]*strings.Builder, len(cmds))
		for i := range cmds {
			cmds[i] = exec.Command(os.Args[0], "-test.run=^TestOpenSourceProcesses$")
			cmds[i].Env = append(os.Environ(), "NEARCACHE_TEST_OPEN_DSN="+dsn)
			outs[i] = &strings.Builder{}
			cmds[i].Stderr = outs[i]
		}
		for _, c := range cmds {
			if err := c.Start(); err != nil {
				t.Fatal(err)
			}
		}
		for i, c := range cmds {
			if err := c.Wait(); err != nil {
				t.Errorf("round %d, process %d: %v: %s", round, i, err, outs[i].String())
			}
		}
	}
}
