package pgfeed

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" driver

	"github.com/nearcache/nearcache/internal/pgtest"
	"github.com/nearcache/nearcache/node"
)

// These tests run a real PostgreSQL (wal_level=logical, internal/pgtest:
// skipped when it is not installed, failed with CI=true) and real 3-node
// clusters on 127.0.0.1 (memberlist over loopback UDP/TCP). PostgreSQL's
// sockets cannot live in a synctest bubble, so waits poll observable state
// (the feed's confirmed LSN, node counters) with a real-time deadline.
// They depend on scheduling (real sockets, real timeouts); run under CPU
// load with
//
//	timeout 1500 sh -c 'yes >/dev/null & yes >/dev/null & go test -race -count=5 -timeout 24m ./feed/pgfeed/; kill %1 %2'

var clusterSeq atomic.Int64

const schema = `
CREATE SEQUENCE ver INCREMENT BY 2;
CREATE FUNCTION bump() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN NEW.version := nextval('ver'); RETURN NEW; END $$;
CREATE TABLE users (id int PRIMARY KEY, name text NOT NULL, version bigint NOT NULL DEFAULT 0);
CREATE TRIGGER users_version BEFORE INSERT OR UPDATE ON users FOR EACH ROW EXECUTE FUNCTION bump();
ALTER TABLE users REPLICA IDENTITY FULL;
CREATE TABLE orders (id int PRIMARY KEY, user_id int, total int NOT NULL);
ALTER TABLE orders REPLICA IDENTITY FULL;
CREATE TABLE unmapped (id int PRIMARY KEY, v int);
`

// pg is a throwaway PostgreSQL with the test schema.
type pg struct {
	dsn string
	db  *sql.DB
	srv *pgtest.Server
}

func startPG(t testing.TB) *pg {
	t.Helper()
	srv := pgtest.StartServer(t, pgtest.Options{Logical: true})
	dsn := srv.DSN
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if _, err := db.Exec(schema); err != nil {
		t.Fatal(err)
	}
	return &pg{dsn: dsn, db: db, srv: srv}
}

func (p *pg) exec(t testing.TB, q string, args ...any) {
	t.Helper()
	if _, err := p.db.Exec(q, args...); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

// insertLSN is the server's WAL insert position: past every commit so far.
func (p *pg) insertLSN(t testing.TB) uint64 {
	t.Helper()
	var s string
	if err := p.db.QueryRow("SELECT pg_current_wal_insert_lsn()::text").Scan(&s); err != nil {
		t.Fatal(err)
	}
	return parseLSN(t, s)
}

func parseLSN(t testing.TB, s string) uint64 {
	hi, lo, ok := strings.Cut(s, "/")
	h, err1 := strconv.ParseUint(hi, 16, 32)
	l, err2 := strconv.ParseUint(lo, 16, 32)
	if !ok || err1 != nil || err2 != nil {
		t.Fatalf("bad LSN %q", s)
	}
	return h<<32 | l
}

type notFound struct{}

func (notFound) Error() string  { return "not found" }
func (notFound) NotFound() bool { return true }

// userLoader loads "user:ID" from users: its name, at its version column.
type userLoader struct{ db *sql.DB }

func (l userLoader) Load(ctx context.Context, key string) (string, uint64, error) {
	id, ok := strings.CutPrefix(key, "user:")
	if !ok {
		return "", 0, fmt.Errorf("bad key %q", key)
	}
	var name string
	var v uint64
	err := l.db.QueryRowContext(ctx, "SELECT name, version FROM users WHERE id = $1", id).Scan(&name, &v)
	if errors.Is(err, sql.ErrNoRows) {
		return "", 0, notFound{}
	}
	return name, v, err
}

// summaryLoader loads "summary:USER" (a ClockVersions group): the user's
// order count and total, a value that depends on many rows (tag user:USER).
type summaryLoader struct{ db *sql.DB }

func (l summaryLoader) Load(ctx context.Context, key string) (string, uint64, error) {
	id, _ := strings.CutPrefix(key, "summary:")
	var n, sum int
	err := l.db.QueryRowContext(ctx, "SELECT count(*), coalesce(sum(total), 0) FROM orders WHERE user_id = $1", id).Scan(&n, &sum)
	return fmt.Sprintf("%d/%d", n, sum), 0, err
}

type member struct {
	n         *node.Node
	users     *node.Group[string]
	summaries *node.Group[string]
}

// cluster starts size nodes on 127.0.0.1 with the groups "users" (LogFed,
// versions from the column) and "summaries" (LogFed, ClockVersions, tagged
// user:ID), all loading from p.
func cluster(t testing.TB, p *pg, size int) []*member {
	t.Helper()
	ms := make([]*member, size)
	name := fmt.Sprintf("pgfeed-%d-%d", os.Getpid(), clusterSeq.Add(1))
	for i := range size {
		cfg := node.DefaultLocalConfig(fmt.Sprintf("n%d", i))
		cfg.Cluster = name
		cfg.MaxStaleness = testMaxStaleness
		if i > 0 {
			cfg.Join = []string{ms[0].n.Addr()}
		}
		n, err := node.Start(t.Context(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { n.Close(context.Background()) })
		u, err := node.NewGroup(n, "users", node.GroupConfig[string]{Loader: userLoader{p.db}, LogFed: true})
		if err != nil {
			t.Fatal(err)
		}
		s, err := node.NewGroup(n, "summaries", node.GroupConfig[string]{Loader: summaryLoader{p.db}, LogFed: true,
			Versioning: node.ClockVersions,
			Tags:       func(key string) []string { return []string{"user:" + strings.TrimPrefix(key, "summary:")} }})
		if err != nil {
			t.Fatal(err)
		}
		ms[i] = &member{n: n, users: u, summaries: s}
	}
	eventually(t, 45*time.Second, "every member trusted and seeing all", func() bool {
		for _, m := range ms {
			if !m.n.Trusted() || len(m.n.Members()) != size {
				return false
			}
		}
		return true
	})
	return ms
}

// testMaxStaleness is the nodes' and the feed's MaxStaleness: 5s, so that
// the tests hold with the race detector on a loaded 2-core machine.
const testMaxStaleness = 5 * time.Second

// feedConfig maps users and orders.
func feedConfig(p *pg) Config {
	cfg := DefaultConfig(p.dsn, "nc_slot", "nc_pub", testMaxStaleness)
	cfg.Tables = []Mapping{
		{Table: "users", Group: "users", Key: "user:{id}", Version: VersionColumn, VersionColumn: "version"},
		{Table: "public.orders", Group: "summaries", Key: "order:{id}", Version: VersionClock, Tags: []string{"user:{user_id}"}},
	}
	return cfg
}

// running is a Feed's Run in a goroutine.
type running struct {
	f      *Feed
	cancel context.CancelFunc
	done   chan error
}

func runFeed(t testing.TB, cfg Config, sink node.ChangeSink) *running {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(tlog{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	f, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{f: f, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- f.Run(ctx, sink) }()
	t.Cleanup(r.stop)
	return r
}

// stop cancels Run and waits for it to return.
func (r *running) stop() {
	r.cancel()
	if r.done != nil {
		<-r.done
		r.done = nil
	}
}

// eventually polls cond every 5ms until it holds or limit passes.
func eventually(t testing.TB, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for: %s", limit, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// waitApplied waits until f confirmed everything committed so far: its
// changes were applied on every node (ApplyChanges returned).
func waitApplied(t testing.TB, p *pg, f *Feed) {
	t.Helper()
	lsn := p.insertLSN(t)
	eventually(t, 60*time.Second, fmt.Sprintf("the feed confirms LSN %X", lsn), func() bool { return f.Stats().ConfirmedLSN >= lsn })
}

// waitTrusted waits until every member serves key of g from its cache
// (the LogFed group heard fresh progress, and the key is cached).
func waitTrusted(t testing.TB, ms []*member, g func(*member) *node.Group[string], key string) {
	t.Helper()
	for _, m := range ms {
		eventually(t, 45*time.Second, m.n.Name()+" serves "+key+" from its cache", func() bool {
			before := gs(m, g(m)).Hits
			if _, err := g(m).Get(context.Background(), key); err != nil && !node.IsNotFound(err) {
				t.Fatal(err)
			}
			return gs(m, g(m)).Hits > before
		})
	}
}

// mustGetCached reads key on every member, requires want (or not found
// when want is ""), and requires that no read was degraded: the value came
// from a trusted node, not from a read-through that would hide a missed
// invalidation.
func mustGetCached(t testing.TB, ms []*member, g func(*member) *node.Group[string], key, want string) {
	t.Helper()
	for _, m := range ms {
		deg := gs(m, g(m)).Degraded
		v, err := g(m).Get(context.Background(), key)
		switch {
		case want == "" && !node.IsNotFound(err):
			t.Errorf("%s: Get(%s) = %q, %v; want not found", m.n.Name(), key, v, err)
		case want != "" && (err != nil || v != want):
			t.Errorf("%s: Get(%s) = %q, %v; want %q", m.n.Name(), key, v, err, want)
		}
		if gs(m, g(m)).Degraded != deg {
			t.Errorf("%s: Get(%s) was degraded (group not trusted): the check proves nothing", m.n.Name(), key)
		}
	}
}

func users(m *member) *node.Group[string]     { return m.users }
func summaries(m *member) *node.Group[string] { return m.summaries }

// gateSink wraps a sink: counts calls, and fails ApplyChanges (as when a
// member does not acknowledge) while blocked.
type gateSink struct {
	node.ChangeSink
	calls    atomic.Int64
	failed   atomic.Int64
	progress atomic.Int64
	blocked  atomic.Bool

	mu   sync.Mutex
	seen map[string]bool // keys of failed batches
	// poison, when set before use, limits the blocking to batches with one
	// of its keys.
	poison map[string]bool
	// onApplied, when set, is called after each successful ApplyChanges.
	onApplied func([]node.Change)
}

func (s *gateSink) ApplyChanges(ctx context.Context, changes []node.Change, opts ...node.WriteOption) error {
	if s.blocked.Load() && s.poisoned(changes) {
		s.failed.Add(1)
		s.mu.Lock()
		if s.seen == nil {
			s.seen = map[string]bool{}
		}
		for _, c := range changes {
			s.seen[c.Key] = true
		}
		s.mu.Unlock()
		return errors.New("injected: a member did not acknowledge")
	}
	if err := s.ChangeSink.ApplyChanges(ctx, changes, opts...); err != nil {
		return err
	}
	s.calls.Add(1)
	if s.onApplied != nil {
		s.onApplied(changes)
	}
	return nil
}

func (s *gateSink) Progress(ctx context.Context, groups []string, asOf time.Time) error {
	s.progress.Add(1)
	return s.ChangeSink.Progress(ctx, groups, asOf)
}

func (s *gateSink) sawKey(k string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.seen[k]
}

// gs returns the counters of group g on m.
func gs(m *member, g *node.Group[string]) node.GroupStats {
	for _, s := range m.n.Stats().Groups {
		if s.Name == g.Name() {
			return s
		}
	}
	panic("no group " + g.Name())
}

// waitFresh waits until a read of key is not degraded on any member (the
// LogFed group is trusted again), without requiring it to be cached.
func waitFresh(t testing.TB, ms []*member, g func(*member) *node.Group[string], key string) {
	t.Helper()
	for _, m := range ms {
		eventually(t, 45*time.Second, m.n.Name()+" trusts "+g(m).Name(), func() bool {
			deg := gs(m, g(m)).Degraded
			g(m).Get(context.Background(), key)
			return gs(m, g(m)).Degraded == deg
		})
	}
}

// tlog writes a feed's log to the test's.
type tlog struct{ t testing.TB }

func (w tlog) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

func (s *gateSink) poisoned(changes []node.Change) bool {
	if s.poison == nil {
		return true
	}
	for _, c := range changes {
		if s.poison[c.Key] {
			return true
		}
	}
	return false
}
