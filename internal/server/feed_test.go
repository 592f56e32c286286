package server

import (
	"database/sql"
	"encoding/json"
	"log/slog"
	"testing"
	"time"

	"github.com/nearcache/nearcache/internal/pgtest"
)

// TestFeedSeesAPlainSQLWrite: with --feed, a write made over a plain SQL
// connection (no nearcache call) reaches the node's cache through
// PostgreSQL's commit log, and cached reads are served once the feed is
// fresh. Without the feed the node would serve the cached row forever (no
// TTL): the poll below would time out.
func TestFeedSeesAPlainSQLWrite(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a PostgreSQL server")
	}
	dsn := pgtest.StartWith(t, pgtest.Options{Logical: true})
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, q := range []string{
		"CREATE TABLE items (id TEXT PRIMARY KEY, body TEXT NOT NULL, version BIGINT NOT NULL)",
		"ALTER TABLE items REPLICA IDENTITY FULL", // the feed needs the old row's version column (it says so when missing)
		"INSERT INTO items VALUES ('k', 'v1', 1)",
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	r := startRun(t, func(c *RunConfig) {
		c.Source, c.Feed = dsn, true
		c.Node.MaxStaleness = 2 * time.Second
		c.Logger = testLogger(t)
	})
	get := func() (string, uint64) {
		t.Helper()
		code, body, _ := r.do(t, "GET", "/v1/groups/items/keys/k", "", "")
		if code != 200 {
			t.Fatalf("GET k = %d %s", code, body)
		}
		var a struct {
			Value   string `json:"value"`
			Version uint64 `json:"version"`
		}
		if err := json.Unmarshal([]byte(body), &a); err != nil {
			t.Fatal(err)
		}
		return a.Value, a.Version
	}
	// Wait until the feed reports progress (cached reads are served: hits).
	hits := `nearcache_gets_total{group="items",result="hit"}`
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) { // polling a real server
		if v, _ := get(); v != "v1" {
			t.Fatalf("read %q before any write", v)
		}
		if r.metric(t, hits) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no cache hit within 30s: the feed never reported progress")
		}
	}
	if _, err := db.Exec("UPDATE items SET body = 'v2', version = 2 WHERE id = 'k'"); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	for {
		if v, ver := get(); ver == 2 && v == "v2" {
			break
		}
		if time.Since(start) > 10*time.Second {
			t.Fatal("a plain SQL UPDATE was not seen by the node within 10s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("plain SQL UPDATE seen after %v", time.Since(start).Round(time.Millisecond))
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelInfo}))
}
