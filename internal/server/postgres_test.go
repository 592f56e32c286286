package server

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"testing"

	"github.com/nearcache/nearcache/internal/pgtest"
	"github.com/nearcache/nearcache/loader"
)

// startPostgres runs a throwaway PostgreSQL server (pgtest.Start, which
// skips when PostgreSQL is not installed) with an empty items table, and
// returns its DSN.
func startPostgres(t *testing.T) string {
	t.Helper()
	dsn := pgtest.Start(t)
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec("CREATE TABLE items (id TEXT PRIMARY KEY, body TEXT NOT NULL, version BIGINT NOT NULL)"); err != nil {
		t.Fatal(err)
	}
	return dsn
}

// TestSourcePostgres runs the source against a real PostgreSQL: pgx, $n
// placeholders, ON CONFLICT ... RETURNING, BIGINT versions.
func TestSourcePostgres(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a PostgreSQL server")
	}
	dsn := startPostgres(t)
	ctx := context.Background()
	if _, err := OpenSource(ctx, dsn, "missing"); err == nil || !strings.Contains(err.Error(), "table missing") {
		t.Errorf("OpenSource on a missing table = %v, want an error naming it", err)
	}
	s, err := OpenSource(ctx, dsn, "items")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, _, err := s.Load(ctx, "k"); !loader.IsNotFound(err) {
		t.Errorf("Load of a missing row = %v, want not found", err)
	}
	if _, err := s.LoadVersion(ctx, "k"); !loader.IsNotFound(err) {
		t.Errorf("LoadVersion of a missing row = %v, want not found", err)
	}
	for want := uint64(1); want <= 3; want++ {
		if v, err := s.Write(ctx, "k", fmt.Sprint("body ", want)); err != nil || v != want {
			t.Fatalf("Write = %d, %v, want %d", v, err, want)
		}
	}
	if it, ver, err := s.Load(ctx, "k"); err != nil || it != (Item{Body: "body 3", Version: 3}) || ver != 3 {
		t.Errorf("Load = %+v, %d, %v, want {body 3, 3}", it, ver, err)
	}
	if v, err := s.LoadVersion(ctx, "k"); err != nil || v != 3 {
		t.Errorf("LoadVersion = %d, %v, want 3", v, err)
	}
}
