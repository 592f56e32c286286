package pgfeed

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/nearcache/nearcache/node"
)

// Feed reads a PostgreSQL logical replication slot (pgoutput) and applies
// the changes of the mapped tables to a [node.ChangeSink]. It satisfies
// [node.ChangeFeed]. Every node may run one on the same slot: PostgreSQL
// lets one consumer stream a slot at a time, so exactly one Feed (the
// holder) applies changes; the others wait and take over when it goes.
type Feed struct {
	cfg    Config
	maps   []mapping
	groups []string // distinct mapped groups, in Config order
	log    *slog.Logger

	holder       atomic.Bool
	changes      atomic.Uint64
	txns         atomic.Uint64
	ignored      atomic.Uint64
	fallbacks    atomic.Uint64
	applyCalls   atomic.Uint64
	applyErrors  atomic.Uint64
	reconnects   atomic.Uint64
	failovers    atomic.Uint64
	slotsCreated atomic.Uint64
	progresses   atomic.Uint64
	confirmed    atomic.Uint64 // LSN
	serverLSN    atomic.Uint64 // the server's WAL position, as last measured
	lastAsOf     atomic.Int64  // unix nanos of the newest progress reported
	running      atomic.Bool

	mu        sync.Mutex
	sawBusy   bool // the slot was found held by another consumer since this feed last held it
	mustPurge bool // this feed created the slot and has not yet had every mapped group purged
}

// New checks cfg and returns a Feed; nothing connects before Run.
func New(cfg Config) (*Feed, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	f := &Feed{cfg: cfg, log: cfg.Logger.With("slot", cfg.Slot)}
	seen := map[string]bool{}
	for _, m := range cfg.Tables {
		c, _ := compile(m) // validated
		f.maps = append(f.maps, c)
		if !seen[c.Group] {
			seen[c.Group] = true
			f.groups = append(f.groups, c.Group)
		}
	}
	return f, nil
}

// Stats are a Feed's counters.
type Stats struct {
	Holder       bool          // this feed streams the slot now
	Changes      uint64        // changes applied (ApplyChanges returned nil)
	Transactions uint64        // transactions whose changes were all applied
	Ignored      uint64        // changes of tables that are not mapped
	Fallbacks    uint64        // rows that could not be keyed (NULL or missing key column, bad version): their group was invalidated whole
	ApplyCalls   uint64        // ApplyChanges calls that returned nil
	ApplyErrors  uint64        // ApplyChanges calls that failed (retried; nothing confirmed meanwhile)
	Reconnects   uint64        // sessions that ended on an error (connection loss, PostgreSQL restart) and were retried
	Failovers    uint64        // times this feed took the slot after finding it held by another consumer
	SlotsCreated uint64        // slots this feed created (first start, or dropped from outside): each purged every mapped group
	Progresses   uint64        // progress reports sent (G9)
	ConfirmedLSN uint64        // the newest LSN confirmed to PostgreSQL as flushed
	LagBytes     uint64        // the server's WAL position, as last measured, less ConfirmedLSN
	Lag          time.Duration // how long ago the newest reported progress's as-of time was (holder only; 0 otherwise)
}

// Stats returns the feed's counters.
func (f *Feed) Stats() Stats {
	s := Stats{
		Holder: f.holder.Load(), Changes: f.changes.Load(), Transactions: f.txns.Load(),
		Ignored: f.ignored.Load(), Fallbacks: f.fallbacks.Load(), ApplyCalls: f.applyCalls.Load(),
		ApplyErrors: f.applyErrors.Load(), Reconnects: f.reconnects.Load(), Failovers: f.failovers.Load(),
		SlotsCreated: f.slotsCreated.Load(), Progresses: f.progresses.Load(), ConfirmedLSN: f.confirmed.Load(),
	}
	if srv := f.serverLSN.Load(); srv > s.ConfirmedLSN {
		s.LagBytes = srv - s.ConfirmedLSN
	}
	if at := f.lastAsOf.Load(); s.Holder && at > 0 {
		s.Lag = max(0, time.Since(time.Unix(0, at)))
	}
	return s
}

// Groups returns the mapped groups, which the feed reports progress for.
func (f *Feed) Groups() []string { return append([]string(nil), f.groups...) }

// errBusy: another consumer streams the slot.
var errBusy = errors.New("pgfeed: the slot is held by another consumer")

// fatalError is an error Run does not retry (a configuration the server or
// the sink refuses).
type fatalError struct{ err error }

func (e *fatalError) Error() string { return e.err.Error() }
func (e *fatalError) Unwrap() error { return e.err }

func fatalf(format string, args ...any) error { return &fatalError{fmt.Errorf(format, args...)} }

// Run takes the slot when it is free and applies its changes to sink until
// ctx ends; while another consumer holds the slot it waits and retries.
// Connection loss and server restarts are retried with backoff (bounded by
// RetryMax). It returns ctx's error, or an error it cannot recover from: a
// server without wal_level=logical, a mapped table missing or with a REPLICA
// IDENTITY that does not carry its key, tag and version columns, a
// publication that does not publish a mapped table, a sink without a mapped
// group. Only one Run per Feed at a time.
func (f *Feed) Run(ctx context.Context, sink node.ChangeSink) error {
	if !f.running.CompareAndSwap(false, true) {
		return errors.New("pgfeed: Run is already running on this Feed")
	}
	defer f.running.Store(false)
	backoff := 50 * time.Millisecond
	for {
		held, err := f.session(ctx, sink)
		f.holder.Store(false)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		var fe *fatalError
		if errors.As(err, &fe) {
			f.log.Error("pgfeed: stopping", "err", err)
			return err
		}
		wait := backoff
		switch {
		case errors.Is(err, errBusy):
			f.mu.Lock()
			f.sawBusy = true
			f.mu.Unlock()
			f.log.Debug("pgfeed: slot held by another consumer; waiting", "err", err)
			wait = f.cfg.RetryMax
		default:
			f.reconnects.Add(1)
			f.log.Warn("pgfeed: session ended; reconnecting", "err", err, "backoff", wait)
			if held {
				backoff = 50 * time.Millisecond
				wait = backoff
			} else {
				backoff = min(2*backoff, f.cfg.RetryMax)
			}
		}
		wait = wait/2 + rand.N(wait/2+1) // jitter: candidates do not retry in step
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

// markerPrefix prefixes the logical messages the holder writes to measure
// the server's position (see progress).
func (f *Feed) markerPrefix() string { return "nearcache.progress." + f.cfg.Slot }

// session connects, checks the setup, takes the slot and streams it until
// an error; held reports whether it held the slot.
func (f *Feed) session(ctx context.Context, sink node.ChangeSink) (held bool, err error) {
	side, err := pgx.Connect(ctx, f.cfg.DSN)
	if err != nil {
		return false, fmt.Errorf("pgfeed: connect: %w", err)
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		side.Close(cctx)
	}()
	if err := f.checkServer(ctx, side); err != nil {
		return false, err
	}
	if err := f.ensurePublication(ctx, side); err != nil {
		return false, err
	}
	if err := f.checkIdentity(ctx, side); err != nil {
		return false, err
	}
	created, err := f.ensureSlot(ctx, side)
	if err != nil {
		return false, err
	}
	// The marker transactions must be durable at once: the stream sends
	// flushed WAL only, whatever synchronous_commit the server defaults to.
	if _, err := side.Exec(ctx, "SET synchronous_commit = local"); err != nil {
		return false, fmt.Errorf("pgfeed: %w", err)
	}

	rcfg, err := pgconn.ParseConfig(f.cfg.DSN)
	if err != nil {
		return false, fatalf("pgfeed: DSN: %w", err)
	}
	rcfg.RuntimeParams["replication"] = "database"
	repl, err := pgconn.ConnectConfig(ctx, rcfg)
	if err != nil {
		return false, fmt.Errorf("pgfeed: replication connect: %w", err)
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		repl.Close(cctx)
	}()
	err = pglogrepl.StartReplication(ctx, repl, f.cfg.Slot, 0, pglogrepl.StartReplicationOptions{
		PluginArgs: []string{"proto_version '1'", "publication_names '" + f.cfg.Publication + "'", "messages 'true'"},
	})
	if err != nil {
		var pe *pgconn.PgError
		if errors.As(err, &pe) && pe.Code == "55006" { // object_in_use: active for another PID
			return false, fmt.Errorf("%w: %s", errBusy, pe.Message)
		}
		return false, fmt.Errorf("pgfeed: START_REPLICATION: %w", err)
	}
	f.holder.Store(true)
	f.mu.Lock()
	took := f.sawBusy
	f.sawBusy = false
	f.mu.Unlock()
	if took {
		f.failovers.Add(1)
		f.log.Info("pgfeed: took the slot over from another consumer")
	} else {
		f.log.Info("pgfeed: holding the slot")
	}
	f.mu.Lock()
	if created {
		f.mustPurge = true
	}
	purge := f.mustPurge
	f.mu.Unlock()
	if purge {
		// What was committed before the slot existed is not in its log: drop
		// every mapped group everywhere before anything is confirmed. Until
		// that is acknowledged, every session of this Feed tries again.
		purge := make([]node.Change, len(f.groups))
		for i, g := range f.groups {
			purge[i] = node.Change{Group: g, Kind: node.ChangeGroup}
		}
		if err := f.apply(ctx, sink, purge); err != nil {
			return true, err
		}
		f.mu.Lock()
		f.mustPurge = false
		f.mu.Unlock()
		f.log.Warn("pgfeed: created the slot; purged every mapped group (changes before it are not in its log)", "groups", f.groups)
	}
	return true, f.stream(ctx, side, repl, sink)
}

// checkServer checks the server's version and wal_level.
func (f *Feed) checkServer(ctx context.Context, side *pgx.Conn) error {
	var num int
	var level string
	if err := side.QueryRow(ctx, "SELECT current_setting('server_version_num')::int, current_setting('wal_level')").Scan(&num, &level); err != nil {
		return fmt.Errorf("pgfeed: %w", err)
	}
	if num < 140000 {
		return fatalf("pgfeed: PostgreSQL %d is too old: the feed needs 14 or later (pgoutput messages)", num)
	}
	if level != "logical" {
		return fatalf("pgfeed: wal_level is %q: set wal_level = logical in postgresql.conf and restart PostgreSQL", level)
	}
	return nil
}

func quoteTable(t string) string {
	schema, name, _ := strings.Cut(t, ".")
	return pgx.Identifier{schema, name}.Sanitize()
}

// ensurePublication creates the publication when missing and checks that it
// publishes every mapped table and every kind of change.
func (f *Feed) ensurePublication(ctx context.Context, side *pgx.Conn) error {
	var n int
	if err := side.QueryRow(ctx, "SELECT count(*) FROM pg_publication WHERE pubname = $1", f.cfg.Publication).Scan(&n); err != nil {
		return fmt.Errorf("pgfeed: %w", err)
	}
	if n == 0 {
		tables := make([]string, len(f.maps))
		for i, m := range f.maps {
			tables[i] = quoteTable(m.table)
		}
		q := "CREATE PUBLICATION " + pgx.Identifier{f.cfg.Publication}.Sanitize() + " FOR TABLE " + strings.Join(tables, ", ")
		if _, err := side.Exec(ctx, q); err != nil {
			var pe *pgconn.PgError
			if !errors.As(err, &pe) || pe.Code != "42710" { // 42710: created meanwhile by another candidate
				return fatalf("pgfeed: %s: %w", q, err)
			}
		} else {
			f.log.Info("pgfeed: created the publication", "publication", f.cfg.Publication)
		}
	}
	var ins, upd, del, trunc bool
	if err := side.QueryRow(ctx, "SELECT pubinsert, pubupdate, pubdelete, pubtruncate FROM pg_publication WHERE pubname = $1",
		f.cfg.Publication).Scan(&ins, &upd, &del, &trunc); err != nil {
		return fmt.Errorf("pgfeed: %w", err)
	}
	if !ins || !upd || !del || !trunc {
		return fatalf("pgfeed: publication %q does not publish every kind of change: ALTER PUBLICATION %s SET (publish = 'insert, update, delete, truncate')",
			f.cfg.Publication, f.cfg.Publication)
	}
	for _, m := range f.maps {
		schema, name, _ := strings.Cut(m.table, ".")
		if err := side.QueryRow(ctx, "SELECT count(*) FROM pg_publication_tables WHERE pubname = $1 AND schemaname = $2 AND tablename = $3",
			f.cfg.Publication, schema, name).Scan(&n); err != nil {
			return fmt.Errorf("pgfeed: %w", err)
		}
		if n == 0 {
			return fatalf("pgfeed: publication %q does not publish mapped table %s: ALTER PUBLICATION %s ADD TABLE %s",
				f.cfg.Publication, m.table, f.cfg.Publication, quoteTable(m.table))
		}
	}
	return nil
}

// checkIdentity checks that each mapped table exists, has the mapped
// columns, and that its REPLICA IDENTITY carries the key, tag and (version
// column mode) version columns in the old row of a DELETE or UPDATE.
func (f *Feed) checkIdentity(ctx context.Context, side *pgx.Conn) error {
	for _, m := range f.maps {
		var ident string
		var cols []string
		err := side.QueryRow(ctx, `SELECT c.relreplident::text, array(SELECT attname::text FROM pg_attribute WHERE attrelid = c.oid AND attnum > 0 AND NOT attisdropped)
			FROM pg_class c WHERE c.oid = to_regclass($1)`, quoteTable(m.table)).Scan(&ident, &cols)
		if errors.Is(err, pgx.ErrNoRows) {
			return fatalf("pgfeed: mapped table %s does not exist", m.table)
		}
		if err != nil {
			return fmt.Errorf("pgfeed: %w", err)
		}
		has := map[string]bool{}
		for _, c := range cols {
			has[c] = true
		}
		need := m.identityColumns()
		for _, c := range need {
			if !has[c] {
				return fatalf("pgfeed: mapped table %s has no column %q", m.table, c)
			}
		}
		var identCols []string
		switch ident {
		case "f":
			continue // FULL: the old row carries every column
		case "n":
		case "d", "i":
			cond := "i.indisprimary"
			if ident == "i" {
				cond = "i.indisreplident"
			}
			if err := side.QueryRow(ctx, `SELECT array(SELECT a.attname::text FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
				WHERE i.indrelid = to_regclass($1) AND `+cond+`)`, quoteTable(m.table)).Scan(&identCols); err != nil {
				return fmt.Errorf("pgfeed: %w", err)
			}
		}
		in := map[string]bool{}
		for _, c := range identCols {
			in[c] = true
		}
		var missing []string
		for _, c := range need {
			if !in[c] && !slices.Contains(missing, c) {
				missing = append(missing, c)
			}
		}
		if len(missing) > 0 {
			return fatalf("pgfeed: table %s: its REPLICA IDENTITY (%s) does not carry column(s) %s, which a DELETE or UPDATE must send in the old row: ALTER TABLE %s REPLICA IDENTITY FULL",
				m.table, map[string]string{"d": "DEFAULT: the primary key", "i": "USING INDEX", "n": "NOTHING"}[ident], strings.Join(missing, ", "), quoteTable(m.table))
		}
	}
	return nil
}

// ensureSlot creates the slot when missing (created reports it); a slot
// streamed by another consumer is errBusy.
func (f *Feed) ensureSlot(ctx context.Context, side *pgx.Conn) (created bool, err error) {
	var plugin, typ string
	var active, here bool
	err = side.QueryRow(ctx, "SELECT coalesce(plugin, ''), slot_type, active, database IS NOT DISTINCT FROM current_database() FROM pg_replication_slots WHERE slot_name = $1",
		f.cfg.Slot).Scan(&plugin, &typ, &active, &here)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		_, err := side.Exec(ctx, "SELECT pg_create_logical_replication_slot($1, 'pgoutput')", f.cfg.Slot)
		var pe *pgconn.PgError
		if errors.As(err, &pe) && pe.Code == "42710" { // created meanwhile by another candidate, which purges
			return false, nil
		}
		if err != nil {
			return false, fmt.Errorf("pgfeed: create slot %q: %w", f.cfg.Slot, err)
		}
		f.slotsCreated.Add(1)
		f.log.Warn("pgfeed: created the replication slot (first start, or it was dropped from outside)")
		return true, nil
	case err != nil:
		return false, fmt.Errorf("pgfeed: %w", err)
	case !here:
		return false, fatalf("pgfeed: slot %q belongs to another database than the DSN's", f.cfg.Slot)
	case typ != "logical" || plugin != "pgoutput":
		return false, fatalf("pgfeed: slot %q is a %s slot with plugin %q: want a logical slot with pgoutput", f.cfg.Slot, typ, plugin)
	case active:
		return false, errBusy
	}
	return false, nil
}

// item is what the stream's reader hands the applier, in stream order.
type item struct {
	changes []node.Change
	ignored int
	commit  pglogrepl.LSN // > 0: a transaction ends here
	marker  uint64        // > 0: a progress marker of this feed (inside its own transaction)
	reply   bool          // the server asked for a status
	err     error
}

// stream reads the slot and applies it until an error.
func (f *Feed) stream(ctx context.Context, side *pgx.Conn, repl *pgconn.PgConn, sink node.ChangeSink) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	session := rand.Uint64() // markers of earlier sessions, replayed, are not ours
	items := make(chan item, 1024)
	done := make(chan struct{})
	go func() {
		defer close(done)
		f.read(ctx, repl, session, items)
	}()
	defer func() {
		cancel() // ends a ReceiveMessage in flight (and a send); session closes repl after
		<-done
	}()

	var (
		pending    []node.Change
		pendingEnd pglogrepl.LSN // the newest transaction end whose changes are all in pending or applied
		pendingTx  uint64
		openMarker uint64
		open       bool   // inside a transaction: its remaining changes are on their way
		doneMarker uint64 // the newest marker whose transaction is in pending or applied
		reply      bool
		seq        uint64
		markers    = map[uint64]time.Time{} // outstanding: seq -> as-of time
		// What this session confirmed; 0 until it confirms something. Not the
		// feed's value from an earlier session: the slot may have been
		// recreated since, and a position must never be confirmed beyond
		// what this slot delivered and was applied.
		confirmed  pglogrepl.LSN
		lastStatus time.Time
	)
	sendStatus := func() error {
		lastStatus = time.Now()
		return pglogrepl.SendStandbyStatusUpdate(ctx, repl, pglogrepl.StandbyStatusUpdate{WALWritePosition: confirmed})
	}
	take := func(it item) error {
		if it.err != nil {
			return it.err
		}
		pending = append(pending, it.changes...)
		if len(it.changes) > 0 || it.ignored > 0 || it.marker > 0 {
			open = true
		}
		if it.ignored > 0 {
			f.ignored.Add(uint64(it.ignored))
		}
		if it.marker > 0 {
			openMarker = it.marker
		}
		if it.commit > 0 {
			if openMarker > 0 {
				doneMarker = openMarker
				openMarker = 0
			} else {
				pendingTx++
			}
			pendingEnd = max(pendingEnd, it.commit)
			open = false
		}
		reply = reply || it.reply
		return nil
	}
	flush := func() error {
		for len(pending) > 0 {
			n := min(len(pending), f.cfg.BatchSize)
			if err := f.apply(ctx, sink, pending[:n]); err != nil {
				return err
			}
			pending = pending[n:]
		}
		pending = pending[:0]
		f.txns.Add(pendingTx)
		pendingTx = 0
		if pendingEnd > confirmed {
			confirmed = pendingEnd
			f.confirmed.Store(uint64(confirmed))
			reply = true
		}
		if doneMarker > 0 {
			asOf, ok := markers[doneMarker]
			for s := range markers {
				if s <= doneMarker {
					delete(markers, s)
				}
			}
			doneMarker = 0
			if ok {
				pctx, c := context.WithTimeout(ctx, f.cfg.ProgressInterval)
				err := sink.Progress(pctx, f.groups, asOf)
				c()
				if err != nil {
					if errors.Is(err, node.ErrUnknownGroup) || errors.Is(err, node.ErrClosed) {
						return &fatalError{err}
					}
					f.log.Warn("pgfeed: progress not published", "err", err)
				} else {
					f.progresses.Add(1)
					f.lastAsOf.Store(asOf.UnixNano())
				}
			}
		}
		if reply || time.Since(lastStatus) >= f.cfg.StatusInterval {
			reply = false
			return sendStatus()
		}
		return nil
	}
	progress := time.NewTicker(f.cfg.ProgressInterval)
	defer progress.Stop()
	status := time.NewTicker(f.cfg.StatusInterval)
	defer status.Stop()
	if err := sendStatus(); err != nil {
		return err
	}
	mark := func() error {
		// Every transaction visible before asOf has its commit record in the
		// WAL before this marker's: the stream sends transactions in commit
		// order, so once the marker's transaction arrived and everything
		// before it was applied, the log is applied up to the server's
		// position at asOf.
		seq++
		asOf := time.Now()
		mctx, c := context.WithTimeout(ctx, f.cfg.ProgressInterval)
		defer c()
		var lsn pglogrepl.LSN
		if err := side.QueryRow(mctx, "SELECT pg_logical_emit_message(true, $1, $2)", f.markerPrefix(), markerContent(session, seq)).Scan(&lsn); err != nil {
			return fmt.Errorf("pgfeed: progress marker: %w", err)
		}
		f.serverLSN.Store(uint64(lsn))
		markers[seq] = asOf
		return nil
	}
	if err := mark(); err != nil {
		return err
	}
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-progress.C:
			if err := mark(); err != nil {
				return err
			}
		case <-status.C:
			if err := sendStatus(); err != nil {
				return err
			}
		case it := <-items:
			if err := take(it); err != nil {
				return err
			}
			// Take what else has arrived, and the rest of an open
			// transaction (nothing of it can be confirmed before its
			// commit), up to a batch.
		drain:
			for len(pending) < f.cfg.BatchSize {
				if open {
					select {
					case it := <-items:
						if err := take(it); err != nil {
							return err
						}
						continue
					case <-ctx.Done():
						return ctx.Err()
					}
				}
				select {
				case it := <-items:
					if err := take(it); err != nil {
						return err
					}
				default:
					break drain
				}
			}
			if err := flush(); err != nil {
				return err
			}
		}
	}
}

// apply applies one batch, retrying until it is acknowledged or ctx ends.
func (f *Feed) apply(ctx context.Context, sink node.ChangeSink, batch []node.Change) error {
	backoff := 10 * time.Millisecond
	for {
		actx, cancel := context.WithTimeout(ctx, f.cfg.ApplyTimeout)
		start := time.Now()
		err := sink.ApplyChanges(actx, batch)
		cancel()
		f.log.Debug("pgfeed: ApplyChanges", "changes", len(batch), "took", time.Since(start), "err", err)
		if err == nil {
			f.applyCalls.Add(1)
			f.changes.Add(uint64(len(batch)))
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if errors.Is(err, node.ErrUnknownGroup) || errors.Is(err, node.ErrClosed) {
			return &fatalError{fmt.Errorf("pgfeed: the sink refuses the changes: %w", err)}
		}
		f.applyErrors.Add(1)
		f.log.Warn("pgfeed: ApplyChanges failed; retrying (nothing is confirmed meanwhile)", "err", err, "changes", len(batch))
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		backoff = min(2*backoff, f.cfg.RetryMax)
	}
}

// read decodes the stream into items until an error, which it hands on as
// the last item.
func (f *Feed) read(ctx context.Context, repl *pgconn.PgConn, session uint64, out chan<- item) {
	dec := newDecoder(f.maps)
	send := func(it item) bool {
		select {
		case out <- it:
			return true
		case <-ctx.Done():
			return false
		}
	}
	prefix := f.markerPrefix()
	var lastFallbacks uint64
	for {
		msg, err := repl.ReceiveMessage(ctx)
		if err != nil {
			send(item{err: fmt.Errorf("pgfeed: stream: %w", err)})
			return
		}
		var it item
		switch m := msg.(type) {
		case *pgproto3.CopyData:
			if len(m.Data) == 0 {
				continue
			}
			switch m.Data[0] {
			case pglogrepl.PrimaryKeepaliveMessageByteID:
				pk, err := pglogrepl.ParsePrimaryKeepaliveMessage(m.Data[1:])
				if err != nil {
					send(item{err: fmt.Errorf("pgfeed: keepalive: %w", err)})
					return
				}
				if !pk.ReplyRequested {
					continue
				}
				it.reply = true
			case pglogrepl.XLogDataByteID:
				xld, err := pglogrepl.ParseXLogData(m.Data[1:])
				if err != nil {
					send(item{err: fmt.Errorf("pgfeed: XLogData: %w", err)})
					return
				}
				lm, err := pglogrepl.Parse(xld.WALData)
				if err != nil {
					send(item{err: fmt.Errorf("pgfeed: pgoutput: %w", err)})
					return
				}
				switch lm := lm.(type) {
				case *pglogrepl.RelationMessage:
					if r := dec.relation(lm); r.broken != "" {
						f.log.Error("pgfeed: mapped table cannot be keyed; its changes invalidate the whole group", "table", r.name, "why", r.broken)
					}
					continue
				case *pglogrepl.BeginMessage:
					dec.finalLSN, dec.inTxn = lm.FinalLSN, true
					continue
				case *pglogrepl.CommitMessage:
					dec.inTxn = false
					it.commit = lm.TransactionEndLSN
				case *pglogrepl.InsertMessage:
					it.changes, it.err = f.row(dec, lm.RelationID, nil, lm.Tuple, &it)
				case *pglogrepl.UpdateMessage:
					it.changes, it.err = f.row(dec, lm.RelationID, lm.OldTuple, lm.NewTuple, &it)
				case *pglogrepl.DeleteMessage:
					it.changes, it.err = f.row(dec, lm.RelationID, lm.OldTuple, nil, &it)
				case *pglogrepl.TruncateMessage:
					it.changes, it.ignored = dec.truncate(lm.RelationIDs)
				case *pglogrepl.LogicalDecodingMessage:
					if lm.Prefix != prefix {
						continue
					}
					sess, s, err := parseMarker(string(lm.Content))
					if err != nil || sess != session || s == 0 || !lm.Transactional {
						continue
					}
					it.marker = s
				default: // Type, Origin
					continue
				}
			default:
				continue
			}
		case *pgproto3.ErrorResponse:
			send(item{err: fmt.Errorf("pgfeed: stream: %w", pgconn.ErrorResponseToPgError(m))})
			return
		case *pgproto3.CopyDone:
			send(item{err: errors.New("pgfeed: the server ended the stream")})
			return
		default:
			continue
		}
		if fb := dec.fallbacks; fb != lastFallbacks {
			f.fallbacks.Add(fb - lastFallbacks)
			lastFallbacks = fb
			f.log.Warn("pgfeed: a row could not be keyed; its group was invalidated whole", "why", dec.fallbackWhy)
		}
		if !send(it) || it.err != nil {
			return
		}
	}
}

// row decodes one row change, guarding the key lengths the sink accepts.
func (f *Feed) row(dec *decoder, id uint32, oldT, newT *pglogrepl.TupleData, it *item) ([]node.Change, error) {
	changes, ignored, err := dec.row(id, oldT, newT)
	if ignored {
		it.ignored = 1
	}
	for _, c := range changes {
		if c.Kind != node.ChangeGroup && (c.Key == "" || len(c.Key) > node.MaxKeyLen) {
			dec.fallbacks++
			dec.fallbackWhy = fmt.Sprintf("a key or tag of %d bytes (want 1 to %d)", len(c.Key), node.MaxKeyLen)
			return []node.Change{{Group: changes[0].Group, Kind: node.ChangeGroup}}, err
		}
	}
	return changes, err
}

func markerContent(session, seq uint64) string {
	return strconv.FormatUint(session, 16) + ":" + strconv.FormatUint(seq, 10)
}

func parseMarker(s string) (session, seq uint64, err error) {
	a, b, ok := strings.Cut(s, ":")
	if !ok {
		return 0, 0, errors.New("no colon")
	}
	if session, err = strconv.ParseUint(a, 16, 64); err != nil {
		return 0, 0, err
	}
	seq, err = strconv.ParseUint(b, 10, 64)
	return session, seq, err
}
