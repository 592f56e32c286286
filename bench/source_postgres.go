package bench

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver
)

// postgresConnectTimeout bounds the first connection, so a wrong DSN fails
// in seconds rather than hanging the run.
const postgresConnectTimeout = 10 * time.Second

// isPostgresDSN reports whether dsn names a PostgreSQL database.
func isPostgresDSN(dsn string) bool {
	return strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://")
}

// PostgresAddr returns host:port/database of a postgres:// DSN, without the
// user or password: what reports print.
func PostgresAddr(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil || u.Host == "" {
		return "PostgreSQL"
	}
	return u.Host + u.Path
}

// connectPostgres opens a pool on dsn and checks that it answers.
func connectPostgres(ctx context.Context, dsn string) (*sql.DB, error) {
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		return nil, fmt.Errorf("bench: PostgreSQL DSN: %w", err)
	}
	pctx, cancel := context.WithTimeout(ctx, postgresConnectTimeout)
	defer cancel()
	if err := db.PingContext(pctx); err != nil {
		db.Close()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("bench: cannot connect to PostgreSQL at %s: %w", PostgresAddr(dsn), err)
	}
	return db, nil
}

// checkPostgres connects to dsn once, so Run fails before starting anything
// else when the database is unreachable.
func checkPostgres(ctx context.Context, dsn string) error {
	db, err := connectPostgres(ctx, dsn)
	if err != nil {
		return err
	}
	return db.Close()
}

// openPostgres creates and seeds a table of its own,
// nearcache_bench_<base36 time> (id TEXT PRIMARY KEY, body BYTEA, version
// BIGINT), so runs sharing a database never touch each other's rows or any
// other table; Close drops it. No latency is added: the network and the
// server supply their own.
func openPostgres(ctx context.Context, cfg SourceConfig) (*Source, error) {
	db, err := connectPostgres(ctx, cfg.DSN)
	if err != nil {
		return nil, err
	}
	// Enough for every worker of a default run (4 instances x 16 workers on
	// the storm) plus the nearcache nodes' loads, within PostgreSQL's default
	// max_connections of 100.
	db.SetMaxOpenConns(64)
	db.SetMaxIdleConns(64)
	table := "nearcache_bench_" + strconv.FormatInt(time.Now().UnixNano(), 36)
	s := &Source{
		db: db, kind: "postgres", table: table, latency: -1, size: cfg.ValueSize, keys: cfg.Keys,
		readSQL:  "SELECT body, version FROM " + table + " WHERE id = $1",
		writeSQL: "UPDATE " + table + " SET version = version + 1 WHERE id = $1 RETURNING version",
	}
	if err := s.seedPostgres(ctx); err != nil {
		return nil, errors.Join(err, s.closePostgres())
	}
	return s, nil
}

// seedPostgres creates the table and loads every row in one transaction:
// one INSERT ... SELECT over generate_series (every row at version 1 has the
// same body), then the primary key built once over the loaded rows, which is
// faster than maintaining it row by row. 100k rows take well under a second.
func (s *Source) seedPostgres(ctx context.Context) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("bench: seed: %w", err)
	}
	defer tx.Rollback()
	stmts := []struct {
		sql  string
		args []any
	}{
		{"CREATE TABLE " + s.table + " (id TEXT NOT NULL, body BYTEA NOT NULL, version BIGINT NOT NULL)", nil},
		{"INSERT INTO " + s.table + " (id, body, version) SELECT 'k' || g, $1::bytea, 1 FROM generate_series(0, $2::int - 1) AS g",
			[]any{s.body(1), s.keys}},
		{"ALTER TABLE " + s.table + " ADD PRIMARY KEY (id)", nil},
	}
	for _, st := range stmts {
		if _, err := tx.ExecContext(ctx, st.sql, st.args...); err != nil {
			return fmt.Errorf("bench: seed: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("bench: seed: %w", err)
	}
	if _, err := s.db.ExecContext(ctx, "ANALYZE "+s.table); err != nil {
		return fmt.Errorf("bench: seed: %w", err)
	}
	return nil
}

// closePostgres drops the table and closes the pool.
func (s *Source) closePostgres() error {
	ctx, cancel := context.WithTimeout(context.Background(), postgresConnectTimeout)
	defer cancel()
	_, err := s.db.ExecContext(ctx, "DROP TABLE IF EXISTS "+s.table)
	if err != nil {
		err = fmt.Errorf("bench: drop %s: %w", s.table, err)
	}
	return errors.Join(err, s.db.Close())
}
