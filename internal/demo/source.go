package demo

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/nearcache/nearcache/loader"

	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

// Item is one row of the source of truth, as the caches hold it: the body
// and the version it was read at.
type Item struct {
	Body    string
	Version uint64
}

const (
	loadQuery  = "SELECT body, version FROM items WHERE id = ?"
	writeQuery = "UPDATE items SET body = ?, version = version + 1 WHERE id = ? RETURNING version"
)

// source is the source of truth: an SQLite database in a file of its own,
// with an added latency before every query standing in for a network hop.
type source struct {
	db      *sql.DB
	latency time.Duration // <= 0: none
	sql     *loader.SQL[Item]
	// loads[i] counts the queries made by the loader of instance i.
	loads  []atomic.Uint64
	writes atomic.Uint64
}

// keyName is the id of row i.
func keyName(i int) string { return "item-" + strconv.Itoa(i) }

// openSource creates file in dir, seeds keys rows at version 1 and returns
// the source for instances loaders.
func openSource(ctx context.Context, dir, file string, keys, instances int, latency time.Duration) (*source, error) {
	// WAL lets readers run beside the writer; busy_timeout makes concurrent
	// writers queue instead of failing with SQLITE_BUSY; synchronous=OFF
	// because the file is thrown away at exit.
	dsn := "file:" + filepath.Join(dir, file) +
		"?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(OFF)"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("demo: open %s: %w", file, err)
	}
	if err := seed(ctx, db, keys); err != nil {
		db.Close()
		return nil, err
	}
	ld, err := loader.NewSQL(loader.SQLConfig[Item]{
		DB:    db,
		Query: loadQuery,
		Scan: func(row loader.Scanner) (Item, uint64, error) {
			var it Item
			if err := row.Scan(&it.Body, &it.Version); err != nil {
				return Item{}, 0, err
			}
			return it, it.Version, nil
		},
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("demo: %w", err)
	}
	return &source{db: db, latency: latency, sql: ld, loads: make([]atomic.Uint64, instances)}, nil
}

func seed(ctx context.Context, db *sql.DB, keys int) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("demo: seed: %w", err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, "CREATE TABLE items (id TEXT PRIMARY KEY, body TEXT NOT NULL, version INTEGER NOT NULL)"); err != nil {
		return fmt.Errorf("demo: seed: %w", err)
	}
	for i := range keys {
		if _, err := tx.ExecContext(ctx, "INSERT INTO items (id, body, version) VALUES (?, ?, 1)", keyName(i), "body 1"); err != nil {
			return fmt.Errorf("demo: seed: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("demo: seed: %w", err)
	}
	return nil
}

// delay sleeps the configured latency, or until ctx ends.
func (s *source) delay(ctx context.Context) error {
	if s.latency <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(s.latency)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// load reads key for instance i through loader.SQL, after the latency.
func (s *source) load(ctx context.Context, i int, key string) (Item, uint64, error) {
	if err := s.delay(ctx); err != nil {
		return Item{}, 0, err
	}
	s.loads[i].Add(1)
	return s.sql.Load(ctx, key)
}

// loader returns instance i's loader, for a node.Group.
func (s *source) loader(i int) func(ctx context.Context, key string) (Item, uint64, error) {
	return func(ctx context.Context, key string) (Item, uint64, error) { return s.load(ctx, i, key) }
}

// write commits a new body for key and returns the version it committed.
func (s *source) write(ctx context.Context, key string) (uint64, error) {
	if err := s.delay(ctx); err != nil {
		return 0, err
	}
	var version uint64
	n := s.writes.Add(1)
	body := "body written by write " + strconv.FormatUint(n, 10)
	if err := s.db.QueryRowContext(ctx, writeQuery, body, key).Scan(&version); err != nil {
		return 0, fmt.Errorf("demo: write %s: %w", key, err)
	}
	return version, nil
}

// totalLoads sums every instance's loads.
func (s *source) totalLoads() uint64 {
	var n uint64
	for i := range s.loads {
		n += s.loads[i].Load()
	}
	return n
}

func (s *source) close() error { return s.db.Close() }
