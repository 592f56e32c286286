package loader

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
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

	// ManyQuery, when set, reads several keys in one query (the loader is
	// then a batch loader: node's GetMany sends a node's misses in one
	// query). It contains "{keys}" where the list of placeholders goes, and
	// returns the key, value and version columns of each row found, e.g.
	//	SELECT id, body, version FROM users WHERE id IN ({keys})
	// "{keys}" becomes "?, ?, ..." (or "$1, $2, ..." with Placeholder "$").
	// Keys with no row are reported missing. With a custom Scan, ManyScan is
	// required too.
	ManyQuery string
	// Placeholder is the driver's placeholder style for ManyQuery: "?"
	// (SQLite, MySQL; the default) or "$" (PostgreSQL).
	Placeholder string
	// ManyScan converts a ManyQuery row into key, value and version. nil =
	// scan the three columns directly (as Scan's default does for two).
	ManyScan func(row Scanner) (string, V, uint64, error)
	// MaxBatch bounds the keys of one ManyQuery (larger batches are split);
	// 0 = 500.
	MaxBatch int
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
	switch {
	case cfg.ManyQuery == "":
	case !strings.Contains(cfg.ManyQuery, "{keys}"):
		return errors.New(`loader: SQLConfig.ManyQuery must contain "{keys}"`)
	case cfg.Scan != nil && cfg.ManyScan == nil:
		return errors.New("loader: SQLConfig.ManyScan is required with a custom Scan and a ManyQuery")
	case cfg.Placeholder != "" && cfg.Placeholder != "?" && cfg.Placeholder != "$":
		return fmt.Errorf(`loader: SQLConfig.Placeholder must be "?" or "$", not %q`, cfg.Placeholder)
	case cfg.MaxBatch < 0:
		return errors.New("loader: SQLConfig.MaxBatch must not be negative")
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

	many     string // ManyQuery; "" = no batches
	dollar   bool
	manyScan func(row Scanner) (string, V, uint64, error)
	maxBatch int
}

// NewSQL returns an SQL loader for cfg. It returns an error if DB or Query
// is missing, or if Scan is nil and V cannot be scanned directly.
func NewSQL[V any](cfg SQLConfig[V]) (*SQL[V], error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	s := &SQL[V]{db: cfg.DB, query: cfg.Query, scan: cfg.Scan,
		many: cfg.ManyQuery, dollar: cfg.Placeholder == "$", manyScan: cfg.ManyScan, maxBatch: cfg.MaxBatch}
	if s.scan == nil {
		s.scan = scanDirect[V]
	}
	if s.manyScan == nil {
		s.manyScan = scanManyDirect[V]
	}
	if s.maxBatch == 0 {
		s.maxBatch = 500
	}
	return s, nil
}

// LoadMany runs ManyQuery for keys (in chunks of MaxBatch) and reports each
// row found; keys without a row are missing. Without a ManyQuery it loads
// the keys one by one with Query. A row whose key was not asked for is an
// error.
func (s *SQL[V]) LoadMany(ctx context.Context, keys []string, found func(i int, v V, version uint64, err error)) error {
	if s.many == "" {
		for i, k := range keys {
			v, ver, err := s.Load(ctx, k)
			if errors.Is(err, ErrNotFound) {
				continue
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
			found(i, v, ver, err)
		}
		return nil
	}
	for lo := 0; lo < len(keys); lo += s.maxBatch {
		if err := s.loadChunk(ctx, keys, lo, min(lo+s.maxBatch, len(keys)), found); err != nil {
			return err
		}
	}
	return nil
}

func (s *SQL[V]) loadChunk(ctx context.Context, keys []string, lo, hi int, found func(int, V, uint64, error)) error {
	index := make(map[string][]int, hi-lo) // a key asked twice is reported twice
	marks := make([]string, 0, hi-lo)
	args := make([]any, 0, hi-lo)
	for i := lo; i < hi; i++ {
		if _, dup := index[keys[i]]; dup {
			index[keys[i]] = append(index[keys[i]], i)
			continue
		}
		index[keys[i]] = []int{i}
		if s.dollar {
			marks = append(marks, "$"+strconv.Itoa(len(args)+1))
		} else {
			marks = append(marks, "?")
		}
		args = append(args, keys[i])
	}
	rows, err := s.db.QueryContext(ctx, strings.Replace(s.many, "{keys}", strings.Join(marks, ", "), 1), args...)
	if err != nil {
		return fmt.Errorf("loader: sql load of %d keys: %w", len(args), err)
	}
	defer rows.Close()
	for rows.Next() {
		k, v, ver, err := s.manyScan(rows)
		if err != nil {
			return fmt.Errorf("loader: sql load of %d keys: %w", len(args), err)
		}
		is, ok := index[k]
		if !ok {
			return fmt.Errorf("loader: sql load of %d keys: ManyQuery returned key %q, not asked for", len(args), k)
		}
		for _, i := range is {
			found(i, v, ver, nil)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("loader: sql load of %d keys: %w", len(args), err)
	}
	return nil
}

// scanManyDirect is the default ManyScan: key, then as scanDirect.
func scanManyDirect[V any](row Scanner) (string, V, uint64, error) {
	var (
		k   string
		v   V
		ver versionDest
	)
	if err := row.Scan(&k, &v, &ver); err != nil {
		var zero V
		return "", zero, 0, err
	}
	return k, v, ver.v, nil
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
