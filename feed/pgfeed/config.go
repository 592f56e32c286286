package pgfeed

import (
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"time"
)

// VersionMode says where the version of a mapped table's change comes from,
// and so which version the group's loader must return for a row.
type VersionMode int

const (
	// VersionColumn: the version is an integer column of the new row
	// (Mapping.VersionColumn), 1 … 2^63−1, which every write of a row must
	// raise: a column fed by a sequence on INSERT and UPDATE (a trigger
	// setting NEW.version := nextval(...)) is the simplest safe choice. The
	// loader returns that column, read in the same statement as the row.
	// A DELETE is applied at the old row's version + 1 (the old row comes
	// from REPLICA IDENTITY FULL), so a re-inserted key must get a version
	// above its deleted version + 1 (a sequence with INCREMENT BY 2 or more,
	// or a sequence that other writes also draw from, does; a key's first
	// version after a delete equal to deleted + 1 would leave a cached "not
	// found" for it until its NegativeTTL ends).
	//
	// Why the order is safe: the feed applies (k, v) only after the row
	// with version v committed; a load that read the row before that commit
	// returned a version < v (the column only grows), so the node refuses
	// it (G1, G8); a load that read it after returned ≥ v and is kept.
	VersionColumn VersionMode = iota + 1
	// VersionCommitLSN: the version is the transaction's commit LSN + 1
	// (the commit record's first byte + 1, which is at most its end). The
	// loader must then return an LSN L such that every transaction whose
	// commit record starts before L is visible to the snapshot it read the
	// row in. Then a load that missed a commit C (start c) has L ≤ c <
	// version(C) and is refused, and a load that saw it has L > c, so L ≥
	// version(C), and is kept. PostgreSQL gives such an L on a hot standby:
	// read pg_last_wal_replay_lsn() in one statement, then the row in the
	// next (READ COMMITTED): every commit replayed by then is visible.
	// pg_current_wal_lsn() on the primary does NOT qualify: a commit record
	// is in the WAL before its transaction becomes visible (for the whole
	// synchronous-replication wait, for one), so a load could read the old
	// row with an L past the commit. Without a standby to read from, use
	// VersionColumn.
	VersionCommitLSN
	// VersionClock: the group is a node.ClockVersions group; changes carry
	// no version and the applying node stamps them with its clock, which
	// orders them after every load that began before (see
	// node.ClockVersions; it assumes clocks within MaxClockSkew). The loader
	// returns no version.
	VersionClock
)

func (m VersionMode) String() string {
	switch m {
	case VersionColumn:
		return "column"
	case VersionCommitLSN:
		return "commit-lsn"
	case VersionClock:
		return "clock"
	}
	return fmt.Sprintf("VersionMode(%d)", int(m))
}

// Mapping maps one table to a group.
type Mapping struct {
	// Table is "schema.table", or "table" for schema public. Required.
	Table string
	// Group is the node group whose keys this table's rows are. Required.
	Group string
	// Key formats a row's cache key from its columns, each named in
	// braces: "user:{id}", "{tenant}/{id}". Required; it must name at least
	// one column. Every column it names must be in the table's REPLICA
	// IDENTITY (a DELETE sends the identity columns only).
	Key string
	// Version says where versions come from; required.
	Version VersionMode
	// VersionColumn names the integer version column (VersionColumn only).
	VersionColumn string
	// Tags are formats like Key; each change bumps the tag it formats, for
	// the old and the new row ("user:{user_id}" on orders: the user's
	// dependent keys are invalidated by the database, F3). A tag with a
	// NULL column is skipped.
	Tags []string
}

// Config configures a [Feed]. A zero field means its default, written
// beside it.
type Config struct {
	// DSN is a libpq/pgx connection string of the primary, for a role with
	// the REPLICATION attribute (and CREATE on the database, to create the
	// publication). "replication=database" is added for the stream. Required.
	DSN string
	// Slot is the logical replication slot (pgoutput) the feed consumes; it
	// is created when missing. Every candidate of one cluster uses the same
	// slot: it admits one consumer at a time, which is the lock. Required.
	Slot string
	// Publication is created when missing as FOR TABLE the mapped tables; an
	// existing one must publish every mapped table. Required.
	Publication string
	// Tables maps tables to groups; at least one, each table once.
	Tables []Mapping
	// MaxStaleness is the nodes' Config.MaxStaleness. Required: progress is
	// reported every fraction of it.
	MaxStaleness time.Duration
	// ProgressInterval is how often the feed measures the server's position
	// and, once applied up to it, reports progress. 0 = MaxStaleness/4.
	// Must be below MaxStaleness.
	ProgressInterval time.Duration
	// BatchSize caps the changes of one ApplyChanges call. 0 = 2048.
	BatchSize int
	// ApplyTimeout bounds one ApplyChanges call (a call that times out is
	// retried, nothing is confirmed meanwhile). 0 = MaxStaleness.
	ApplyTimeout time.Duration
	// RetryMax caps the backoff between attempts to take the slot (held by
	// another candidate) or to reconnect. 0 = ProgressInterval.
	RetryMax time.Duration
	// StatusInterval is how often the confirmed position is sent even when
	// it did not move (PostgreSQL drops a consumer silent for
	// wal_sender_timeout, 60s by default). 0 = 10s.
	StatusInterval time.Duration
	Logger         *slog.Logger // nil = discard
}

// DefaultConfig returns a Config with the required names and MaxStaleness
// set; add Tables.
func DefaultConfig(dsn, slot, publication string, maxStaleness time.Duration) Config {
	return Config{DSN: dsn, Slot: slot, Publication: publication, MaxStaleness: maxStaleness}
}

var identRE = regexp.MustCompile(`^[a-z_][a-z0-9_$]*$`)

func (c Config) validate() error {
	switch {
	case c.DSN == "":
		return errors.New("pgfeed: DSN is required")
	case !identRE.MatchString(c.Slot) || len(c.Slot) > 63:
		return fmt.Errorf("pgfeed: Slot %q: want a lower-case identifier of at most 63 bytes ([a-z_][a-z0-9_]*)", c.Slot)
	case !identRE.MatchString(c.Publication) || len(c.Publication) > 63:
		return fmt.Errorf("pgfeed: Publication %q: want a lower-case identifier of at most 63 bytes", c.Publication)
	case c.MaxStaleness <= 0:
		return errors.New("pgfeed: MaxStaleness (the nodes' Config.MaxStaleness) is required")
	case c.ProgressInterval < 0 || c.BatchSize < 0 || c.ApplyTimeout < 0 || c.RetryMax < 0 || c.StatusInterval < 0:
		return errors.New("pgfeed: durations and BatchSize must not be negative")
	case c.ProgressInterval >= c.MaxStaleness:
		return fmt.Errorf("pgfeed: ProgressInterval (%v) must be below MaxStaleness (%v)", c.ProgressInterval, c.MaxStaleness)
	case len(c.Tables) == 0:
		return errors.New("pgfeed: Tables: map at least one table")
	}
	seen := map[string]bool{}
	for i, m := range c.Tables {
		if _, err := compile(m); err != nil {
			return fmt.Errorf("pgfeed: Tables[%d]: %w", i, err)
		}
		q := qualified(m.Table)
		if seen[q] {
			return fmt.Errorf("pgfeed: Tables[%d]: table %s mapped twice", i, q)
		}
		seen[q] = true
	}
	return nil
}

func (c Config) withDefaults() Config {
	if c.ProgressInterval == 0 {
		c.ProgressInterval = c.MaxStaleness / 4
	}
	if c.BatchSize == 0 {
		c.BatchSize = 2048
	}
	if c.ApplyTimeout == 0 {
		c.ApplyTimeout = c.MaxStaleness
	}
	if c.RetryMax == 0 {
		c.RetryMax = c.ProgressInterval
	}
	if c.StatusInterval == 0 {
		c.StatusInterval = 10 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	c.Tables = append([]Mapping(nil), c.Tables...)
	return c
}

// qualified returns "schema.table" (schema public when none is given).
func qualified(table string) string {
	if strings.Contains(table, ".") {
		return table
	}
	return "public." + table
}

// format is a parsed key or tag format: literals between column references.
type format struct {
	src  string
	lits []string // len(cols)+1
	cols []string
}

var colRE = regexp.MustCompile(`\{([^{}]*)\}`)

func parseFormat(s string) (format, error) {
	f := format{src: s}
	last := 0
	for _, loc := range colRE.FindAllStringSubmatchIndex(s, -1) {
		name := s[loc[2]:loc[3]]
		if name == "" {
			return f, fmt.Errorf("format %q: empty column name {}", s)
		}
		f.lits = append(f.lits, s[last:loc[0]])
		f.cols = append(f.cols, name)
		last = loc[1]
	}
	f.lits = append(f.lits, s[last:])
	for _, l := range f.lits {
		if strings.ContainsAny(l, "{}") {
			return f, fmt.Errorf("format %q: unbalanced brace", s)
		}
	}
	if len(f.cols) == 0 {
		return f, fmt.Errorf("format %q names no column (write columns in braces: \"user:{id}\")", s)
	}
	return f, nil
}

// render formats vals (one per column, in order); ok is false when a column
// is NULL.
func (f format) render(vals []*string) (string, bool) {
	var b strings.Builder
	for i, l := range f.lits {
		b.WriteString(l)
		if i < len(f.cols) {
			if vals[i] == nil {
				return "", false
			}
			b.WriteString(*vals[i])
		}
	}
	return b.String(), true
}

// mapping is a validated Mapping.
type mapping struct {
	Mapping
	table string // schema.table
	key   format
	tags  []format
}

func compile(m Mapping) (mapping, error) {
	c := mapping{Mapping: m, table: qualified(m.Table)}
	if m.Table == "" || m.Group == "" {
		return c, errors.New("Table and Group are required")
	}
	var err error
	if c.key, err = parseFormat(m.Key); err != nil {
		return c, fmt.Errorf("table %s: Key: %w", c.table, err)
	}
	for _, t := range m.Tags {
		f, err := parseFormat(t)
		if err != nil {
			return c, fmt.Errorf("table %s: Tags: %w", c.table, err)
		}
		c.tags = append(c.tags, f)
	}
	switch m.Version {
	case VersionColumn:
		if m.VersionColumn == "" {
			return c, fmt.Errorf("table %s: VersionColumn mode needs VersionColumn", c.table)
		}
	case VersionCommitLSN, VersionClock:
		if m.VersionColumn != "" {
			return c, fmt.Errorf("table %s: VersionColumn is for mode VersionColumn only (mode %v)", c.table, m.Version)
		}
	default:
		return c, fmt.Errorf("table %s: Version: want VersionColumn, VersionCommitLSN or VersionClock", c.table)
	}
	return c, nil
}

// identityColumns are the columns a DELETE or key-changing UPDATE must
// carry in its old row: key, tags and (VersionColumn) the version.
func (m mapping) identityColumns() []string {
	cols := append([]string(nil), m.key.cols...)
	for _, t := range m.tags {
		cols = append(cols, t.cols...)
	}
	if m.Version == VersionColumn {
		cols = append(cols, m.VersionColumn)
	}
	return cols
}
