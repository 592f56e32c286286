package bench

import (
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

// ErrNotFound is returned by [Source.Read] for a key the source does not hold.
var ErrNotFound = errors.New("bench: key not found")

// Value is one row as the caches hold it: the body and the version it was
// read at.
type Value struct {
	Body    []byte
	Version uint64
}

// encodeValue packs v as 8 bytes of big-endian version followed by the body:
// the wire form in Redis and groupcache.
func encodeValue(v Value) []byte {
	b := make([]byte, 8+len(v.Body))
	binary.BigEndian.PutUint64(b, v.Version)
	copy(b[8:], v.Body)
	return b
}

// decodeValue is the inverse of encodeValue.
func decodeValue(b []byte) (Value, error) {
	if len(b) < 8 {
		return Value{}, fmt.Errorf("bench: encoded value of %d bytes is shorter than its version", len(b))
	}
	return Value{Version: binary.BigEndian.Uint64(b), Body: append([]byte(nil), b[8:]...)}, nil
}

// Key returns the name of row i.
func Key(i int) string { return "k" + strconv.Itoa(i) }

// keyIndex is the inverse of Key; -1 if key is not one of ours.
func keyIndex(key string) int {
	if len(key) < 2 || key[0] != 'k' {
		return -1
	}
	i, err := strconv.Atoi(key[1:])
	if err != nil || i < 0 {
		return -1
	}
	return i
}

// SourceConfig configures a [Source].
type SourceConfig struct {
	// DSN chooses the database: "" = a fresh SQLite file in Dir; a
	// postgres:// or postgresql:// URL = a fresh table in that PostgreSQL
	// database, through pgx (see OpenSource).
	DSN       string
	Dir       string        // directory of the SQLite file; required without DSN
	Keys      int           // rows, "k0".."k{Keys-1}", all at version 1; 0 = 100000
	ValueSize int           // bytes of every body; 0 = 100
	Latency   time.Duration // SQLite only: added before every query; 0 = 1ms; negative = none
}

func (c SourceConfig) validate() error {
	switch {
	case c.DSN != "" && !isPostgresDSN(c.DSN):
		return errors.New("bench: source DSN must start with postgres:// or postgresql:// (\"\" = SQLite)")
	case c.DSN == "" && c.Dir == "":
		return errors.New("bench: SourceConfig.Dir is required for the SQLite source")
	case c.Keys < 0:
		return errors.New("bench: Keys must not be negative")
	case c.ValueSize < 0:
		return errors.New("bench: ValueSize must not be negative")
	}
	return nil
}

func (c SourceConfig) withDefaults() SourceConfig {
	if c.Keys == 0 {
		c.Keys = 100000
	}
	if c.ValueSize == 0 {
		c.ValueSize = 100
	}
	switch {
	case c.DSN != "":
		c.Latency = -1 // a networked database has its own
	case c.Latency == 0:
		c.Latency = time.Millisecond
	}
	return c
}

// Source is the source of truth: a table (id, body, version) in a fresh
// SQLite file with an added latency before every query, or in PostgreSQL.
// Safe for concurrent use.
type Source struct {
	db      *sql.DB
	kind    string // "sqlite" or "postgres"
	file    string // SQLite: the database file, removed by Close
	table   string // PostgreSQL: the table, dropped by Close
	latency time.Duration
	size    int
	keys    int

	readSQL, writeSQL string

	reads, writes atomic.Uint64
}

// OpenSource creates a fresh database and seeds it: without cfg.DSN an
// SQLite file in cfg.Dir, with it a new table in PostgreSQL (openPostgres).
func OpenSource(ctx context.Context, cfg SourceConfig) (*Source, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	if cfg.DSN != "" {
		return openPostgres(ctx, cfg)
	}
	// WAL lets readers run beside the writer; busy_timeout queues concurrent
	// writers; synchronous=OFF because the file is thrown away.
	file := filepath.Join(cfg.Dir, "source-"+strconv.FormatInt(time.Now().UnixNano(), 36)+".db")
	dsn := "file:" + file + "?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(OFF)"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("bench: open source: %w", err)
	}
	db.SetMaxOpenConns(16)
	db.SetMaxIdleConns(16)
	s := &Source{
		db: db, kind: "sqlite", file: file, latency: cfg.Latency, size: cfg.ValueSize, keys: cfg.Keys,
		readSQL:  "SELECT body, version FROM items WHERE id = ?",
		writeSQL: "UPDATE items SET version = version + 1 WHERE id = ? RETURNING version",
	}
	if err := s.seed(ctx); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

func (s *Source) seed(ctx context.Context) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("bench: seed: %w", err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, "CREATE TABLE items (id TEXT PRIMARY KEY, body BLOB NOT NULL, version INTEGER NOT NULL)"); err != nil {
		return fmt.Errorf("bench: seed: %w", err)
	}
	st, err := tx.PrepareContext(ctx, "INSERT INTO items (id, body, version) VALUES (?, ?, 1)")
	if err != nil {
		return fmt.Errorf("bench: seed: %w", err)
	}
	defer st.Close()
	for i := range s.keys {
		if _, err := st.ExecContext(ctx, Key(i), s.body(1)); err != nil {
			return fmt.Errorf("bench: seed: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("bench: seed: %w", err)
	}
	return nil
}

// body returns a body of the configured size that names version.
func (s *Source) body(version uint64) []byte {
	b := make([]byte, s.size)
	for i := range b {
		b[i] = 'a' + byte(i%26)
	}
	copy(b, "v"+strconv.FormatUint(version, 10)+" ")
	return b
}

// Keys returns the number of rows.
func (s *Source) Keys() int { return s.keys }

// Kind returns "sqlite" or "postgres".
func (s *Source) Kind() string { return s.kind }

// Latency returns the added per-query latency (<= 0: none; always none for
// PostgreSQL).
func (s *Source) Latency() time.Duration { return s.latency }

// delay waits the configured latency, or until ctx ends.
func (s *Source) delay(ctx context.Context) error {
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

// Read returns the row of key after the added latency; every call counts as
// one query.
func (s *Source) Read(ctx context.Context, key string) (Value, error) {
	s.reads.Add(1)
	if err := s.delay(ctx); err != nil {
		return Value{}, err
	}
	var v Value
	err := s.db.QueryRowContext(ctx, s.readSQL, key).Scan(&v.Body, &v.Version)
	if errors.Is(err, sql.ErrNoRows) {
		return Value{}, fmt.Errorf("bench: read %s: %w", key, ErrNotFound)
	}
	if err != nil {
		return Value{}, fmt.Errorf("bench: read %s: %w", key, err)
	}
	return v, nil
}

// Write bumps the version of key's row (the body stays) and returns the new
// version; concurrent writers of one key get distinct, increasing versions.
func (s *Source) Write(ctx context.Context, key string) (uint64, error) {
	s.writes.Add(1)
	if err := s.delay(ctx); err != nil {
		return 0, err
	}
	var version uint64
	err := s.db.QueryRowContext(ctx, s.writeSQL, key).Scan(&version)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, fmt.Errorf("bench: write %s: %w", key, ErrNotFound)
	}
	if err != nil {
		return 0, fmt.Errorf("bench: write %s: %w", key, err)
	}
	return version, nil
}

// Reads returns the number of read queries so far.
func (s *Source) Reads() uint64 { return s.reads.Load() }

// Writes returns the number of write queries so far.
func (s *Source) Writes() uint64 { return s.writes.Load() }

// Close closes the database and removes what OpenSource created: the SQLite
// files, or the PostgreSQL table.
func (s *Source) Close() error {
	if s.kind == "postgres" {
		return s.closePostgres()
	}
	err := s.db.Close()
	for _, suffix := range []string{"", "-wal", "-shm"} {
		if rerr := os.Remove(s.file + suffix); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
			err = errors.Join(err, rerr)
		}
	}
	return err
}
