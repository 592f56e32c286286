package server

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/nearcache/nearcache/loader"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver
	"modernc.org/sqlite"               // registers the "sqlite" driver
	sqlite3 "modernc.org/sqlite/lib"
)

// Source is the source of truth behind the "items" group: one table
// (id TEXT PRIMARY KEY, body TEXT, version INTEGER) in SQLite (modernc, pure
// Go) or PostgreSQL (pgx). It implements node.Loader[Item] and
// node.VersionLoader, and writes rows for the PUT endpoint. It is safe for
// concurrent use.
type Source struct {
	db     *sql.DB
	driver string // "sqlite" or "pgx"
	load   *loader.SQL[Item]

	versionQuery string
	writeQuery   string
}

var tableRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,62}$`)

// sqliteParams are prepended to a SQLite DSN's own parameters: writers from
// several processes queue instead of failing with SQLITE_BUSY, and WAL lets
// readers run beside a writer.
const sqliteParams = "_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)"

// parseDSN maps a source DSN to a database/sql driver name and its DSN.
//
//	sqlite:///abs/path.db[?params]  -> sqlite, file:/abs/path.db?<busy_timeout, WAL>[&params]
//	sqlite://rel/path.db            -> a path relative to the working directory
//	postgres://... or postgresql:// -> pgx, unchanged
func parseDSN(dsn string) (driver, driverDSN string, err error) {
	switch {
	case strings.HasPrefix(dsn, "sqlite://"):
		path, params, _ := strings.Cut(strings.TrimPrefix(dsn, "sqlite://"), "?")
		if path == "" {
			return "", "", errors.New("server: sqlite DSN has no file path (want sqlite:///path/to/db)")
		}
		d := "file:" + path + "?" + sqliteParams
		if params != "" {
			d += "&" + params
		}
		return "sqlite", d, nil
	case strings.HasPrefix(dsn, "postgres://"), strings.HasPrefix(dsn, "postgresql://"):
		return "pgx", dsn, nil
	case dsn == "":
		return "", "", errors.New("server: source DSN is required (sqlite:///path/to/db or postgres://...)")
	}
	scheme, _, _ := strings.Cut(dsn, ":")
	return "", "", fmt.Errorf("server: source DSN scheme %q is not supported (want sqlite:// or postgres://)", scheme)
}

// queries returns the statements for table in driver's placeholder syntax.
func queries(driver, table string) (load, version, write string) {
	p1, p2 := "?", "?"
	if driver == "pgx" {
		p1, p2 = "$1", "$2"
	}
	load = "SELECT body, version FROM " + table + " WHERE id = " + p1
	version = "SELECT version FROM " + table + " WHERE id = " + p1
	// One statement, so concurrent writers of a key serialise on its row and
	// each gets its own version.
	write = "INSERT INTO " + table + " (id, body, version) VALUES (" + p1 + ", " + p2 + ", 1) " +
		"ON CONFLICT (id) DO UPDATE SET body = excluded.body, version = " + table + ".version + 1 " +
		"RETURNING version"
	return load, version, write
}

// OpenSource opens the database at dsn and checks that it answers. For SQLite
// it creates table if it is missing; a PostgreSQL table must exist.
func OpenSource(ctx context.Context, dsn, table string) (*Source, error) {
	if !tableRE.MatchString(table) {
		return nil, fmt.Errorf("server: table name %q is not a plain SQL identifier", table)
	}
	driver, driverDSN, err := parseDSN(dsn)
	if err != nil {
		return nil, err
	}
	db, err := sql.Open(driver, driverDSN)
	if err != nil {
		return nil, fmt.Errorf("server: open source: %w", err)
	}
	s, err := newSource(ctx, db, driver, table)
	for retry := time.Duration(0); err != nil && isBusy(err) && retry < busyRetryFor; retry += busyRetryEvery {
		// Several processes opening a fresh SQLite file race to switch it to
		// WAL, and the loser gets SQLITE_BUSY whatever its busy_timeout.
		t := time.NewTimer(busyRetryEvery)
		select {
		case <-ctx.Done():
			t.Stop()
			db.Close()
			return nil, fmt.Errorf("server: open source: %w", ctx.Err())
		case <-t.C:
		}
		s, err = newSource(ctx, db, driver, table)
	}
	if err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

// How long, and how often, OpenSource retries a SQLite file that is busy.
const (
	busyRetryFor   = 10 * time.Second
	busyRetryEvery = 50 * time.Millisecond
)

// isBusy reports whether err is SQLite's SQLITE_BUSY (database is locked).
func isBusy(err error) bool {
	var se *sqlite.Error
	return errors.As(err, &se) && se.Code()&0xff == sqlite3.SQLITE_BUSY
}

func newSource(ctx context.Context, db *sql.DB, driver, table string) (*Source, error) {
	if err := db.PingContext(ctx); err != nil {
		return nil, fmt.Errorf("server: source does not answer: %w", err)
	}
	if driver == "sqlite" {
		if _, err := db.ExecContext(ctx, "CREATE TABLE IF NOT EXISTS "+table+
			" (id TEXT PRIMARY KEY, body TEXT NOT NULL, version INTEGER NOT NULL)"); err != nil {
			return nil, fmt.Errorf("server: create table %s: %w", table, err)
		}
	}
	loadQ, versionQ, writeQ := queries(driver, table)
	// Fail at startup, not at the first request, when the table is missing
	// or lacks a column.
	var probe int64
	if err := db.QueryRowContext(ctx, versionQ, "").Scan(&probe); err != nil && !errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("server: table %s (want columns id, body, version): %w", table, err)
	}
	ld, err := loader.NewSQL(loader.SQLConfig[Item]{
		DB:    db,
		Query: loadQ,
		Scan: func(row loader.Scanner) (Item, uint64, error) {
			var (
				body string
				ver  int64
			)
			if err := row.Scan(&body, &ver); err != nil {
				return Item{}, 0, err
			}
			if ver <= 0 {
				return Item{}, 0, fmt.Errorf("server: row has version %d, want > 0", ver)
			}
			return Item{Body: body, Version: uint64(ver)}, uint64(ver), nil
		},
	})
	if err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	return &Source{db: db, driver: driver, load: ld, versionQuery: versionQ, writeQuery: writeQ}, nil
}

// Load reads key's row. A missing row is an error for which
// loader.IsNotFound is true. It implements node.Loader[Item].
func (s *Source) Load(ctx context.Context, key string) (Item, uint64, error) {
	return s.load.Load(ctx, key)
}

// LoadVersion reads only key's version, for verified reads. It implements
// node.VersionLoader.
func (s *Source) LoadVersion(ctx context.Context, key string) (uint64, error) {
	var ver int64
	err := s.db.QueryRowContext(ctx, s.versionQuery, key).Scan(&ver)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return 0, fmt.Errorf("server: version of %q: %w", key, loader.ErrNotFound)
	case err != nil:
		return 0, fmt.Errorf("server: version of %q: %w", key, err)
	case ver <= 0:
		return 0, fmt.Errorf("server: version of %q is %d, want > 0", key, ver)
	}
	return uint64(ver), nil
}

// Write sets key's body: the row's version goes up by one, or the row is
// inserted at version 1. It returns the committed version.
func (s *Source) Write(ctx context.Context, key, body string) (uint64, error) {
	var ver int64
	if err := s.db.QueryRowContext(ctx, s.writeQuery, key, body).Scan(&ver); err != nil {
		return 0, fmt.Errorf("server: write %q: %w", key, err)
	}
	return uint64(ver), nil
}

// Close closes the database.
func (s *Source) Close() error { return s.db.Close() }
