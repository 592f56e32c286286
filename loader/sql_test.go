package loader_test

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nearcache/nearcache/loader"
	"github.com/nearcache/nearcache/loader/loadertest"

	_ "modernc.org/sqlite" // driver "sqlite", tests only
)

const kvQuery = "SELECT body, version FROM kv WHERE id = ?"

// openKV opens a fresh SQLite file in t.TempDir with the kv table.
func openKV(tb testing.TB) *sql.DB {
	tb.Helper()
	dsn := "file:" + filepath.Join(tb.TempDir(), "kv.db") +
		"?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	if _, err := db.Exec("CREATE TABLE kv (id TEXT PRIMARY KEY, body BLOB, version INTEGER)"); err != nil {
		tb.Fatal(err)
	}
	return db
}

// sqlFixture writes the kv table.
type sqlFixture struct{ db *sql.DB }

func (f sqlFixture) Put(ctx context.Context, key string, value []byte, version uint64) error {
	_, err := f.db.ExecContext(ctx,
		`INSERT INTO kv (id, body, version) VALUES (?, ?, ?)
		 ON CONFLICT(id) DO UPDATE SET body = excluded.body, version = excluded.version`,
		key, value, int64(version))
	return err
}

func (f sqlFixture) Delete(ctx context.Context, key string) error {
	_, err := f.db.ExecContext(ctx, "DELETE FROM kv WHERE id = ?", key)
	return err
}

func TestSQLConformance(t *testing.T) {
	loadertest.Run(t, func(t *testing.T) (loadertest.Loader, loadertest.Fixture) {
		db := openKV(t)
		l, err := loader.NewSQL(loader.SQLConfig[[]byte]{DB: db, Query: kvQuery})
		if err != nil {
			t.Fatal(err)
		}
		return l, sqlFixture{db}
	})
}

// TestSQLLoad covers the default Scan's handling of the row shapes a real
// schema produces. Each query has one placeholder and returns a fixed row.
func TestSQLLoad(t *testing.T) {
	db := openKV(t)
	tests := []struct {
		name         string
		query        string
		wantVal      string
		wantVer      uint64
		wantErr      string // substring; "" = success
		wantNotFound bool
	}{
		{name: "integer version", query: "SELECT 'v', 42 WHERE ? <> ''", wantVal: "v", wantVer: 42},
		{name: "max int64 version", query: "SELECT 'v', 9223372036854775807 WHERE ? <> ''", wantVal: "v", wantVer: 1<<63 - 1},
		{name: "text version", query: "SELECT 'v', '42' WHERE ? <> ''", wantVal: "v", wantVer: 42},
		{name: "integral real version", query: "SELECT 'v', 42.0 WHERE ? <> ''", wantVal: "v", wantVer: 42},
		{name: "NULL body", query: "SELECT NULL, 1 WHERE ? <> ''", wantVal: "", wantVer: 1},
		{name: "negative version", query: "SELECT 'v', -1 WHERE ? <> ''", wantErr: "negative version -1"},
		{name: "NULL version", query: "SELECT 'v', NULL WHERE ? <> ''", wantErr: "version column is NULL"},
		{name: "fractional version", query: "SELECT 'v', 4.5 WHERE ? <> ''", wantErr: "not a non-negative integer"},
		{name: "text non-number version", query: "SELECT 'v', 'abc' WHERE ? <> ''", wantErr: "not a non-negative integer"},
		{name: "no row", query: "SELECT 'v', 1 WHERE ? = ''", wantErr: `loader: sql load "k": loader: not found`, wantNotFound: true},
		{name: "query error", query: "SELECT body, version FROM nosuch WHERE id = ?", wantErr: `loader: sql load "k": `},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, err := loader.NewSQL(loader.SQLConfig[[]byte]{DB: db, Query: tt.query})
			if err != nil {
				t.Fatal(err)
			}
			val, ver, err := l.Load(t.Context(), "k")
			if tt.wantErr == "" {
				if err != nil || string(val) != tt.wantVal || ver != tt.wantVer {
					t.Errorf("Load(%q) = %q, %d, %v; want %q, %d, nil", "k", val, ver, err, tt.wantVal, tt.wantVer)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Load(%q) error = %v, want one containing %q", "k", err, tt.wantErr)
			}
			if val != nil || ver != 0 {
				t.Errorf("Load(%q) = %q, %d with error; want zero value and version", "k", val, ver)
			}
			if got := loader.IsNotFound(err); got != tt.wantNotFound {
				t.Errorf("IsNotFound(%v) = %v, want %v", err, got, tt.wantNotFound)
			}
			if got := errors.Is(err, loader.ErrNotFound); got != tt.wantNotFound {
				t.Errorf("errors.Is(%v, ErrNotFound) = %v, want %v", err, got, tt.wantNotFound)
			}
			if got := errors.Is(err, sql.ErrNoRows); got != tt.wantNotFound {
				t.Errorf("errors.Is(%v, sql.ErrNoRows) = %v, want %v", err, got, tt.wantNotFound)
			}
		})
	}
}

func TestSQLLoadDeadline(t *testing.T) {
	db := openKV(t)
	l, err := loader.NewSQL(loader.SQLConfig[[]byte]{DB: db, Query: kvQuery})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithDeadline(t.Context(), time.Unix(0, 0))
	defer cancel()
	if _, _, err := l.Load(ctx, "k"); !errors.Is(err, context.DeadlineExceeded) || !strings.HasPrefix(err.Error(), "loader: sql load") {
		t.Errorf("Load(expired ctx) error = %v, want a wrapped context.DeadlineExceeded", err)
	}
}

type user struct {
	Name string `json:"name"`
}

// newSQLErr returns only NewSQL's error, so the table can mix value types.
func newSQLErr[V any](cfg loader.SQLConfig[V]) error {
	_, err := loader.NewSQL(cfg)
	return err
}

func TestNewSQLValidate(t *testing.T) {
	db := openKV(t)
	scanUser := func(loader.Scanner) (user, uint64, error) { return user{}, 0, nil }
	tests := []struct {
		name    string
		err     error
		wantErr string // "" = valid
	}{
		{"nil DB", newSQLErr(loader.SQLConfig[[]byte]{Query: kvQuery}), "loader: SQLConfig.DB is required"},
		{"empty Query", newSQLErr(loader.SQLConfig[[]byte]{DB: db}), "loader: SQLConfig.Query is required"},
		{"struct without Scan", newSQLErr(loader.SQLConfig[user]{DB: db, Query: kvQuery}), "loader: SQLConfig.Scan is required for value type loader_test.user"},
		{"RawBytes without Scan", newSQLErr(loader.SQLConfig[sql.RawBytes]{DB: db, Query: kvQuery}), "loader: SQLConfig.Scan is required for value type sql.RawBytes"},
		{"interface with methods", newSQLErr(loader.SQLConfig[error]{DB: db, Query: kvQuery}), "loader: SQLConfig.Scan is required for value type error"},
		{"struct with Scan", newSQLErr(loader.SQLConfig[user]{DB: db, Query: kvQuery, Scan: scanUser}), ""},
		{"[]byte", newSQLErr(loader.SQLConfig[[]byte]{DB: db, Query: kvQuery}), ""},
		{"string", newSQLErr(loader.SQLConfig[string]{DB: db, Query: kvQuery}), ""},
		{"int64", newSQLErr(loader.SQLConfig[int64]{DB: db, Query: kvQuery}), ""},
		{"any", newSQLErr(loader.SQLConfig[any]{DB: db, Query: kvQuery}), ""},
		{"time.Time", newSQLErr(loader.SQLConfig[time.Time]{DB: db, Query: kvQuery}), ""},
		{"sql.Scanner", newSQLErr(loader.SQLConfig[sql.NullString]{DB: db, Query: kvQuery}), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			switch {
			case tt.wantErr == "" && tt.err != nil:
				t.Errorf("NewSQL: %v, want nil", tt.err)
			case tt.wantErr != "" && (tt.err == nil || tt.err.Error() != tt.wantErr):
				t.Errorf("NewSQL error = %v, want %q", tt.err, tt.wantErr)
			}
		})
	}
}

// TestSQLCustomScanNotFound checks that a custom Scan's sql.ErrNoRows still
// becomes a not-found error, and its other errors stay errors.
func TestSQLCustomScanNotFound(t *testing.T) {
	db := openKV(t)
	if err := (sqlFixture{db}).Put(t.Context(), "bad", []byte("{not json"), 1); err != nil {
		t.Fatal(err)
	}
	l, err := loader.NewSQL(loader.SQLConfig[user]{DB: db, Query: kvQuery, Scan: scanJSONUser})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := l.Load(t.Context(), "missing"); !loader.IsNotFound(err) {
		t.Errorf("Load(missing) error = %v, want not found", err)
	}
	if _, _, err := l.Load(t.Context(), "bad"); err == nil || loader.IsNotFound(err) {
		t.Errorf("Load(bad JSON) error = %v, want a decode error", err)
	}
}

func BenchmarkSQLLoad(b *testing.B) {
	db := openKV(b)
	if err := (sqlFixture{db}).Put(b.Context(), "k", []byte("value"), 1); err != nil {
		b.Fatal(err)
	}
	l, err := loader.NewSQL(loader.SQLConfig[[]byte]{DB: db, Query: kvQuery})
	if err != nil {
		b.Fatal(err)
	}
	ctx := b.Context()
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := l.Load(ctx, "k"); err != nil {
			b.Fatal(err)
		}
	}
}
