package pgfeed

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/nearcache/nearcache/node"
)

// memberlist's Shutdown does not wait for a probe in flight (see node's
// TestMain); pgx's connections close with their Close.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("github.com/hashicorp/memberlist.(*Memberlist).probeNode"))
}

// TestPlainSQLWrites: an UPDATE, an INSERT and a DELETE made over a plain
// SQL connection (no nearcache call) are applied on every node: once the
// feed confirmed them (ApplyChanges returned, so every member acknowledged),
// a read on every node, served from a trusted cache, returns the new row.
// Checked to fail: with the feed's ChangeKey removed (row returns nil),
// every node keeps serving "alice".
func TestPlainSQLWrites(t *testing.T) {
	p := startPG(t)
	p.exec(t, "INSERT INTO users (id, name) VALUES (1, 'alice'), (2, 'bob')")
	ms := cluster(t, p, 3)
	r := runFeed(t, feedConfig(p), ms[0].n)
	waitTrusted(t, ms, users, "user:1")
	waitTrusted(t, ms, users, "user:2")

	p.exec(t, "UPDATE users SET name = 'alicia' WHERE id = 1")
	waitApplied(t, p, r.f)
	mustGetCached(t, ms, users, "user:1", "alicia")

	p.exec(t, "DELETE FROM users WHERE id = 2")
	waitApplied(t, p, r.f)
	mustGetCached(t, ms, users, "user:2", "")

	p.exec(t, "INSERT INTO users (id, name) VALUES (2, 'bea')")
	waitApplied(t, p, r.f)
	mustGetCached(t, ms, users, "user:2", "bea")

	if s := r.f.Stats(); !s.Holder || s.Changes == 0 || s.Transactions < 3 || s.Progresses == 0 {
		t.Errorf("stats %+v: want holder, changes, 3+ transactions, progress", s)
	}
}

// TestIgnoredTable: with a publication that also publishes an unmapped
// table, its changes are ignored and counted.
func TestIgnoredTable(t *testing.T) {
	p := startPG(t)
	p.exec(t, "CREATE PUBLICATION nc_pub FOR TABLE users, orders, unmapped")
	ms := cluster(t, p, 1)
	r := runFeed(t, feedConfig(p), ms[0].n)
	eventually(t, 45*time.Second, "holder", func() bool { return r.f.Stats().Progresses > 0 })
	p.exec(t, "INSERT INTO unmapped VALUES (1, 1), (2, 2)")
	waitApplied(t, p, r.f)
	if s := r.f.Stats(); s.Ignored != 2 {
		t.Errorf("Ignored = %d, want 2", s.Ignored)
	}
}

// TestTruncate: TRUNCATE invalidates the whole group on every node.
// Checked to fail: with truncate returning no changes, the nodes serve the
// truncated rows.
func TestTruncate(t *testing.T) {
	p := startPG(t)
	p.exec(t, "INSERT INTO users (id, name) SELECT g, 'u' || g FROM generate_series(1, 5) g")
	ms := cluster(t, p, 3)
	r := runFeed(t, feedConfig(p), ms[0].n)
	for i := 1; i <= 5; i++ {
		waitTrusted(t, ms, users, fmt.Sprintf("user:%d", i))
	}
	p.exec(t, "TRUNCATE users")
	waitApplied(t, p, r.f)
	for i := 1; i <= 5; i++ {
		mustGetCached(t, ms, users, fmt.Sprintf("user:%d", i), "")
	}
}

// TestBigTransaction: one UPDATE of 10,000 rows is delivered in batches
// (ApplyChanges calls of up to BatchSize changes, not one per row), and
// every node serves the new rows. Checked to fail: with BatchSize forced to
// 1 the call count is 10,000.
func TestBigTransaction(t *testing.T) {
	p := startPG(t)
	p.exec(t, "INSERT INTO users (id, name) SELECT g, 'old' FROM generate_series(1, 10000) g")
	ms := cluster(t, p, 3)
	sink := &gateSink{ChangeSink: ms[0].n}
	r := runFeed(t, feedConfig(p), sink)
	keys := []string{"user:1", "user:4321", "user:10000"}
	for _, k := range keys {
		waitTrusted(t, ms, users, k)
	}
	calls, changes := sink.calls.Load(), r.f.Stats().Changes
	p.exec(t, "UPDATE users SET name = 'new'")
	waitApplied(t, p, r.f)
	// Applying 10,000 rows may take longer than MaxStaleness under -race:
	// then the nodes rightly stopped trusting the group until progress resumed.
	waitFresh(t, ms, users, "user:1")
	for _, k := range keys {
		mustGetCached(t, ms, users, k, "new")
	}
	s := r.f.Stats()
	n := sink.calls.Load() - calls
	if got := s.Changes - changes; got < 10000 {
		t.Errorf("applied %d changes, want 10000", got)
	}
	if max := int64(10000/2048 + 3); n > max || n < 5 {
		t.Errorf("%d ApplyChanges calls for 10,000 rows; want 5 to %d (batches of at most 2048)", n, max)
	}
	t.Logf("10,000 rows in %d ApplyChanges calls", n)
}

// TestTagFromColumn: an INSERT into orders bumps the tag user:{user_id},
// which invalidates the dependent key summary:7 (a ClockVersions group,
// stamped by the node) on every node. Checked to fail: with Tags dropped
// from the mapping the nodes keep "0/0".
func TestTagFromColumn(t *testing.T) {
	p := startPG(t)
	ms := cluster(t, p, 3)
	r := runFeed(t, feedConfig(p), ms[0].n)
	waitTrusted(t, ms, summaries, "summary:7")
	mustGetCached(t, ms, summaries, "summary:7", "0/0")
	p.exec(t, "INSERT INTO orders VALUES (1, 7, 30), (2, 8, 5)")
	waitApplied(t, p, r.f)
	mustGetCached(t, ms, summaries, "summary:7", "1/30")
	p.exec(t, "UPDATE orders SET user_id = 9 WHERE id = 1") // moves the order: both users' tags
	waitApplied(t, p, r.f)
	mustGetCached(t, ms, summaries, "summary:7", "0/0")
	mustGetCached(t, ms, summaries, "summary:9", "1/30")
}

// TestFailoverLosesNothing: two candidates on one slot. While writers
// commit over plain SQL, the holder receives a transaction it cannot get
// acknowledged (ApplyChanges fails for it, as when a member does not ack)
// and is then cut off (its ctx cancelled mid-transaction); the other
// candidate takes the slot and every committed version reaches every node.
// Checked to fail: confirming a transaction's LSN when it is received
// (before ApplyChanges returned) loses the cut-off transaction.
func TestFailoverLosesNothing(t *testing.T) {
	p := startPG(t)
	const keys, hot = 20, 10 // writers keep writing keys 1..hot; keys hot+1.. are written once, by the cut-off transaction
	p.exec(t, "INSERT INTO users (id, name) SELECT g, 'v0' FROM generate_series(1, $1) g", keys)
	ms := cluster(t, p, 3)
	sinkA := &gateSink{ChangeSink: ms[0].n, poison: map[string]bool{}}
	for id := hot + 1; id <= keys; id++ {
		sinkA.poison[fmt.Sprintf("user:%d", id)] = true
	}
	cfg := feedConfig(p)
	a := runFeed(t, cfg, sinkA)
	eventually(t, 45*time.Second, "A holds the slot", func() bool { return a.f.Stats().Progresses > 0 })
	b := runFeed(t, cfg, ms[1].n)
	for i := 1; i <= keys; i++ {
		waitTrusted(t, ms, users, fmt.Sprintf("user:%d", i))
	}
	eventually(t, 30*time.Second, "B finds the slot busy", func() bool { return !b.f.Stats().Holder && b.f.mustSawBusy() })

	ctx, stopWrites := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var mu sync.Mutex
	last := map[int]string{} // the newest committed name of each key
	for w := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ctx.Err() == nil; i++ {
				id := 1 + (i*2+w)%hot
				name := fmt.Sprintf("w%d-%d", w, i)
				mu.Lock() // one writer per key at a time: the newest commit is the newest name
				if _, err := p.db.Exec("UPDATE users SET name = $2 WHERE id = $1", id, name); err != nil {
					mu.Unlock()
					t.Errorf("write: %v", err)
					return
				}
				last[id] = name
				mu.Unlock()
			}
		}()
	}
	eventually(t, 30*time.Second, "A applies the writers' transactions", func() bool { return a.f.Stats().Changes > 50 })
	sinkA.blocked.Store(true)
	p.exec(t, "UPDATE users SET name = 'cut' WHERE id > $1", hot)
	eventually(t, 30*time.Second, "A received the transaction it cannot apply", func() bool { return sinkA.sawKey(fmt.Sprintf("user:%d", keys)) })
	confirmedA := a.f.Stats().ConfirmedLSN
	a.stop()
	eventually(t, 30*time.Second, "B takes the slot", func() bool { return b.f.Stats().Holder })
	eventually(t, 30*time.Second, "B applies", func() bool { return b.f.Stats().Changes > 0 })
	stopWrites()
	wg.Wait()
	waitApplied(t, p, b.f)
	eventually(t, 30*time.Second, "B reports progress", func() bool { return b.f.Stats().Progresses > 0 })
	if s := b.f.Stats(); s.Failovers != 1 {
		t.Errorf("B's Failovers = %d, want 1", s.Failovers)
	}
	if a.f.Stats().ConfirmedLSN != confirmedA {
		t.Errorf("A confirmed %X after its applies started failing (at %X)", a.f.Stats().ConfirmedLSN, confirmedA)
	}
	waitFresh(t, ms, users, "user:1") // every node heard B's progress
	mu.Lock()
	defer mu.Unlock()
	for id := 1; id <= keys; id++ {
		want, ok := last[id]
		switch {
		case id > hot:
			want = "cut"
		case !ok:
			want = "v0"
		}
		mustGetCached(t, ms, users, fmt.Sprintf("user:%d", id), want)
	}
	t.Logf("A applied %d batches, failed %d; B: %+v", sinkA.calls.Load(), sinkA.failed.Load(), b.f.Stats())
}

func (f *Feed) mustSawBusy() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.sawBusy
}

// TestSlotDroppedFromOutside: the slot is dropped while no feed runs and a
// write lands meanwhile (it is in no log); the next feed recreates the slot
// and purges every mapped group first, so no node serves the old row. Then
// the slot is dropped under a running feed: it recreates it and goes on.
// Checked to fail: without the purge after creating the slot, every node
// serves "before".
func TestSlotDroppedFromOutside(t *testing.T) {
	p := startPG(t)
	p.exec(t, "INSERT INTO users (id, name) VALUES (1, 'before')")
	ms := cluster(t, p, 3)
	cfg := feedConfig(p)
	r := runFeed(t, cfg, ms[0].n)
	waitTrusted(t, ms, users, "user:1")
	r.stop()
	eventually(t, 30*time.Second, "the slot dropped (once PostgreSQL saw the feed go)", func() bool {
		_, err := p.db.Exec("SELECT pg_drop_replication_slot('nc_slot')")
		return err == nil
	})
	p.exec(t, "UPDATE users SET name = 'after' WHERE id = 1")

	r = runFeed(t, cfg, ms[0].n)
	eventually(t, 45*time.Second, "the feed recreated the slot", func() bool { return r.f.Stats().SlotsCreated == 1 && r.f.Stats().Progresses > 0 })
	waitApplied(t, p, r.f)
	waitTrusted(t, ms, users, "user:1")
	mustGetCached(t, ms, users, "user:1", "after")

	// Dropped under a running feed: terminate its walsender, drop the slot
	// before the feed reconnects (it retries; so do we).
	eventually(t, 45*time.Second, "the slot dropped from outside", func() bool {
		var dropped bool
		err := p.db.QueryRow(`SELECT pg_terminate_backend(active_pid) IS NOT NULL FROM pg_replication_slots WHERE slot_name = 'nc_slot'`).Scan(new(bool))
		if err == nil {
			_, err = p.db.Exec("SELECT pg_drop_replication_slot('nc_slot')")
			dropped = err == nil
		}
		return dropped
	})
	eventually(t, 45*time.Second, "the feed recreated the slot again", func() bool { return r.f.Stats().SlotsCreated == 2 && r.f.Stats().Holder })
	p.exec(t, "UPDATE users SET name = 'later' WHERE id = 1")
	waitApplied(t, p, r.f)
	waitTrusted(t, ms, users, "user:1")
	mustGetCached(t, ms, users, "user:1", "later")
	if s := r.f.Stats(); s.Reconnects == 0 {
		t.Errorf("Reconnects = 0 after its walsender was terminated")
	}
}

// TestG9 checks log-based freshness: with the feed stopped, and with the
// feed unable to apply (a member does not acknowledge) while a write is
// pending, every node stops serving cached values of the LogFed group
// within MaxStaleness of the last progress, and serves them again once the
// feed is back. Checked to fail: reporting progress on a timer regardless
// of what was applied keeps the nodes trusting the group while the write
// is unapplied (the second part).
func TestG9(t *testing.T) {
	p := startPG(t)
	p.exec(t, "INSERT INTO users (id, name) VALUES (1, 'a')")
	ms := cluster(t, p, 3)
	cfg := feedConfig(p)
	untrustedWithin := func(what string, r *running) { t.Helper(); untrustedWithin(t, ms, what, r) }

	sink := &gateSink{ChangeSink: ms[0].n}
	r := runFeed(t, cfg, sink)
	waitTrusted(t, ms, users, "user:1")
	r.stop()
	untrustedWithin("with the feed stopped", r)

	r = runFeed(t, cfg, sink)
	waitTrusted(t, ms, users, "user:1")

	sink.blocked.Store(true)
	p.exec(t, "UPDATE users SET name = 'b' WHERE id = 1")
	eventually(t, 30*time.Second, "the feed tried to apply the write", func() bool { return sink.sawKey("user:1") })
	untrustedWithin("with a write the feed cannot apply", r)
	if s := r.f.Stats(); s.ApplyErrors == 0 {
		t.Error("ApplyErrors = 0")
	}
	sink.blocked.Store(false)
	waitApplied(t, p, r.f)
	waitTrusted(t, ms, users, "user:1")
	mustGetCached(t, ms, users, "user:1", "b")
}

// TestConfigErrors: validation names the field.
func TestConfigErrors(t *testing.T) {
	ok := Config{DSN: "x", Slot: "s", Publication: "p", MaxStaleness: time.Second,
		Tables: []Mapping{{Table: "t", Group: "g", Key: "k:{id}", Version: VersionClock}}}
	if _, err := New(ok); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		mut  func(*Config)
		want string
	}{
		{"no DSN", func(c *Config) { c.DSN = "" }, "DSN"},
		{"bad slot", func(c *Config) { c.Slot = "Bad-Slot" }, "Slot"},
		{"no MaxStaleness", func(c *Config) { c.MaxStaleness = 0 }, "MaxStaleness"},
		{"interval too long", func(c *Config) { c.ProgressInterval = 2 * time.Second }, "ProgressInterval"},
		{"no tables", func(c *Config) { c.Tables = nil }, "Tables"},
		{"key without column", func(c *Config) { c.Tables[0].Key = "k" }, "names no column"},
		{"no version mode", func(c *Config) { c.Tables[0].Version = 0 }, "Version"},
		{"column mode without column", func(c *Config) { c.Tables[0].Version = VersionColumn }, "VersionColumn"},
		{"table twice", func(c *Config) { c.Tables = append(c.Tables, c.Tables[0]) }, "mapped twice"},
		{"bad tag", func(c *Config) { c.Tables[0].Tags = []string{"u:{"} }, "Tags"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := ok
			c.Tables = append([]Mapping(nil), ok.Tables...)
			tc.mut(&c)
			if _, err := New(c); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("New: %v; want an error naming %q", err, tc.want)
			}
		})
	}
}

// TestSetupErrors: a server or table the feed cannot work with stops Run
// with an error that says what to do.
func TestSetupErrors(t *testing.T) {
	p := startPG(t)
	p.exec(t, "CREATE TABLE plain (id int PRIMARY KEY, owner int, version bigint)")
	cfg := feedConfig(p)
	cfg.Tables = []Mapping{{Table: "plain", Group: "users", Key: "user:{id}", Version: VersionColumn, VersionColumn: "version"}}
	f, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	err = f.Run(ctx, nopSink{})
	if err == nil || !strings.Contains(err.Error(), "REPLICA IDENTITY FULL") {
		t.Errorf("Run on a table whose identity lacks the version column: %v; want advice to set REPLICA IDENTITY FULL", err)
	}
	cfg.Tables[0].Table = "missing"
	cfg.Publication = "other"
	f, _ = New(cfg)
	if err := f.Run(ctx, nopSink{}); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Errorf("Run on a missing table: %v", err)
	}
}

type nopSink struct{}

func (nopSink) ApplyChanges(context.Context, []node.Change, ...node.WriteOption) error { return nil }
func (nopSink) Progress(context.Context, []string, time.Time) error                    { return nil }

// untrustedWithin polls a cached key's reads on every member until each
// stops trusting the LogFed group users, and checks that no read begun
// after the feed's last reported as-of time + MaxStaleness was served from
// the cache (G9). Call it once the feed can report no more progress.
func untrustedWithin(t *testing.T, ms []*member, what string, r *running) {
	t.Helper()
	const maxStaleness = testMaxStaleness
	type read struct {
		at      time.Time // before the Get began
		trusted bool
	}
	reads := map[string][]read{}
	for _, m := range ms {
		eventually(t, 3*maxStaleness, m.n.Name()+" stops trusting users "+what, func() bool {
			deg := gs(m, m.users).Degraded
			at := time.Now()
			m.users.Get(context.Background(), "user:1")
			trusted := gs(m, m.users).Degraded == deg
			reads[m.n.Name()] = append(reads[m.n.Name()], read{at, trusted})
			return !trusted
		})
	}
	asOf := time.Unix(0, r.f.lastAsOf.Load())
	for name, rs := range reads {
		for _, rd := range rs {
			if rd.trusted && rd.at.After(asOf.Add(maxStaleness)) {
				t.Errorf("%s %s: a read %v after the last progress's as-of time served the cache (MaxStaleness %v)",
					name, what, rd.at.Sub(asOf), maxStaleness)
			}
		}
	}
}

// TestPostgresRestart: PostgreSQL stopped under a running feed: every node
// stops serving the LogFed group's cached values within MaxStaleness of the
// last progress (G9); started again: the feed reconnects and resumes, the
// nodes trust the group again, and a write after the restart reaches every
// node. Checked to fail: a feed that does not reconnect (Run returning on
// a session error) never confirms the write.
func TestPostgresRestart(t *testing.T) {
	p := startPG(t)
	p.exec(t, "INSERT INTO users (id, name) VALUES (1, 'a')")
	ms := cluster(t, p, 3)
	r := runFeed(t, feedConfig(p), ms[0].n)
	waitTrusted(t, ms, users, "user:1")
	p.srv.Stop()
	eventually(t, 30*time.Second, "the feed notices", func() bool { return r.f.Stats().Reconnects > 0 })
	untrustedWithin(t, ms, "with PostgreSQL stopped", r)
	p.srv.Start()
	p.exec(t, "UPDATE users SET name = 'b' WHERE id = 1")
	waitApplied(t, p, r.f)
	waitTrusted(t, ms, users, "user:1")
	mustGetCached(t, ms, users, "user:1", "b")
}
