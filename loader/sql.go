package loader

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"reflect"
	"time"
)

// Scanner is the part of *sql.Row that a custom [SQLConfig.Scan] uses.
type Scanner interface {
	// Scan copies the columns of the current row into dest, with the
	// conversions of database/sql. It returns sql.ErrNoRows when the query
	// matched no row.
	Scan(dest ...any) error
}

// SQLConfig configures an [SQL] loader.
type SQLConfig[V any] struct {
	// DB is the database to read; required. The driver is the caller's
	// choice, and the caller keeps ownership: SQL never closes it.
	DB *sql.DB

	// Query reads one key; required. It has exactly one placeholder, bound
	// to the key, in the driver's syntax, and returns the value and version
	// columns of at most one row, e.g.
	//	SELECT body, version FROM users WHERE id = ?
	// Extra rows are ignored.
	Query string

	// Scan converts the row into a value and version. nil = scan the two
	// columns directly into (V, version): this works for V of kind string,
	// []byte, bool, any integer or float kind, time.Time, or a type
	// implementing sql.Scanner. With nil Scan the version column must be a
	// non-negative integer (integer, integral float, decimal text or
	// time.Time as Unix nanoseconds); NULL or a negative version is an
	// error, never version 0. A custom Scan must return sql.ErrNoRows
	// (wrapped or not) unchanged when the row is missing.
	Scan func(row Scanner) (V, uint64, error)
}

// validate checks cfg without changing it.
func (cfg SQLConfig[V]) validate() error {
	if cfg.DB == nil {
		return errors.New("loader: SQLConfig.DB is required")
	}
	if cfg.Query == "" {
		return errors.New("loader: SQLConfig.Query is required")
	}
	if cfg.Scan == nil && !directlyScannable(reflect.TypeFor[V]()) {
		return fmt.Errorf("loader: SQLConfig.Scan is required for value type %v", reflect.TypeFor[V]())
	}
	return nil
}

var (
	scannerType = reflect.TypeFor[sql.Scanner]()
	timeType    = reflect.TypeFor[time.Time]()
	rawType     = reflect.TypeFor[sql.RawBytes]()
)

// directlyScannable reports whether database/sql's Row.Scan can store a
// column into a *T.
func directlyScannable(t reflect.Type) bool {
	if t == rawType { // Row.Scan refuses RawBytes: it would alias driver memory.
		return false
	}
	if reflect.PointerTo(t).Implements(scannerType) || t == timeType {
		return true
	}
	switch t.Kind() {
	case reflect.String, reflect.Bool, reflect.Interface,
		reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64,
		reflect.Float32, reflect.Float64:
		return t.Kind() != reflect.Interface || t.NumMethod() == 0
	case reflect.Slice:
		return t.Elem().Kind() == reflect.Uint8
	}
	return false
}

// SQL is a loader that reads one row through database/sql.
//
// It prepares nothing: every Load runs Query with QueryRowContext, so there
// is no statement to close and no lazily prepared state to race on. It is
// safe for concurrent use to the extent the driver is (*sql.DB pools
// connections).
type SQL[V any] struct {
	db    *sql.DB
	query string
	scan  func(row Scanner) (V, uint64, error)
}

// NewSQL returns an SQL loader for cfg. It returns an error if DB or Query
// is missing, or if Scan is nil and V cannot be scanned directly.
func NewSQL[V any](cfg SQLConfig[V]) (*SQL[V], error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	s := &SQL[V]{db: cfg.DB, query: cfg.Query, scan: cfg.Scan}
	if s.scan == nil {
		s.scan = scanDirect[V]
	}
	return s, nil
}

// Load runs the query for key under ctx and returns the row's value and
// version.
//
// A missing row returns an error that satisfies both errors.Is(err,
// ErrNotFound) and errors.Is(err, sql.ErrNoRows), and [IsNotFound]. Any other
// failure, including ctx being done, is wrapped as
// "loader: sql load <key>: <cause>" and keeps its cause for errors.Is.
func (s *SQL[V]) Load(ctx context.Context, key string) (V, uint64, error) {
	v, ver, err := s.scan(s.db.QueryRowContext(ctx, s.query, key))
	if err != nil {
		var zero V
		if errors.Is(err, sql.ErrNoRows) {
			return zero, 0, fmt.Errorf("loader: sql load %q: %w: %w", key, ErrNotFound, err)
		}
		return zero, 0, fmt.Errorf("loader: sql load %q: %w", key, err)
	}
	return v, ver, nil
}

// scanDirect is the default Scan: the first column into V, the second into
// a checked version.
func scanDirect[V any](row Scanner) (V, uint64, error) {
	var (
		v   V
		ver versionDest
	)
	if err := row.Scan(&v, &ver); err != nil {
		var zero V
		return zero, 0, err
	}
	return v, ver.v, nil
}
