//go:build linux

package check

import (
	"bufio"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the campaign writes to PostgreSQL directly
)

// The PostgreSQL mode of a process campaign (ProcessConfig.Postgres): the
// nodes run `nearcache node --source postgres://... --feed`, so the items
// group is log-fed (its invalidations come from PostgreSQL's commit log
// through whichever node holds the replication slot), and the writers write
// to PostgreSQL directly, with no call to any node: an UPDATE that bumps the
// version column and returns it, recorded with the time it returned. The
// checker then checks G9 on every read (Params.LogFed).
//
// What is checked in this mode, and why: G9 on every read; G4 (after each
// fault every node reads every key at least at PostgreSQL's version); G5 on
// the nodes a fault cut off (implied by G9 here, whose bound has no slack).
// G2 and G7 (and G8 with it) are about writes through a node and AckAll
// invalidations, and G1's floors are the invalidations a node applied: no
// write goes through a node, so the history has no writer node, no AckAll
// write and no applied invalidation the recorder sees, and they hold
// vacuously. The checker's stricter G1 floor, "below a version an earlier
// read on the node returned", does not hold for log-fed groups (a node that
// reads through returns the database's newest, ahead of the feed): such
// reads are counted as Report.ReadRegressions, not as violations.

// feedSlot is the replication slot the binary's feed uses for the items
// table (internal/server's feedName).
const feedSlot = "nearcache_items"

// probeKey is a row the workload never touches: the campaign reads it to
// see that a node serves cached values (its feed progress is fresh) before
// the workload starts.
const probeKey = "probe"

// feedWitnesses are rows the workload never writes: ProcStopHolder caches
// them on every node before the stop, updates them in PostgreSQL once the
// holder is stopped, and reads them through every other node once those
// updates are older than MaxStaleness (see witnessReads).
var feedWitnesses = []string{"fw0", "fw1", "fw2", "fw3"}

// openPostgres opens the campaign's own connection pool to PostgreSQL and
// creates the items table (REPLICA IDENTITY FULL, as the feed requires),
// with keys and probeKey at version 1.
func openPostgres(ctx context.Context, dsn string, keys []string) (*sql.DB, error) {
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		return nil, fmt.Errorf("check: open postgres: %w", err)
	}
	stmts := []string{
		"CREATE TABLE IF NOT EXISTS items (id TEXT PRIMARY KEY, body TEXT NOT NULL, version BIGINT NOT NULL)",
		"ALTER TABLE items REPLICA IDENTITY FULL",
	}
	for _, q := range stmts {
		if _, err := db.ExecContext(ctx, q); err != nil {
			db.Close()
			return nil, fmt.Errorf("check: %s: %w", q, err)
		}
	}
	for _, k := range append(append([]string{probeKey}, feedWitnesses...), keys...) {
		if _, err := db.ExecContext(ctx, "INSERT INTO items (id, body, version) VALUES ($1, 'initial', 1) "+
			"ON CONFLICT (id) DO UPDATE SET body = 'initial', version = 1", k); err != nil {
			db.Close()
			return nil, fmt.Errorf("check: fill postgres: %w", err)
		}
	}
	return db, nil
}

// writePostgres writes key in PostgreSQL directly (no node hears of it but
// through the log) and records the version it committed: Commit and Start
// are when the statement was sent, End when it returned. The commit
// happened in between; G9 counts from End (see Check).
func (r *procRun) writePostgres(ctx context.Context, key, value string) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	start := r.rec.Now()
	var v int64
	err := r.c.db.QueryRowContext(ctx, "UPDATE items SET body = $1, version = version + 1 WHERE id = $2 RETURNING version",
		value, key).Scan(&v)
	end := r.rec.Now()
	if err != nil {
		v = 0 // committed or not: unknown
	}
	r.rec.Write("", key, uint64(v), start, start, end, false, err)
	return err
}

// holder returns the slot of the node whose process streams the feed's
// replication slot now: PostgreSQL names the walsender's client port
// (pg_replication_slots.active_pid, pg_stat_activity.client_port), the
// kernel the socket bound to it (/proc/net/tcp), and the processes' file
// descriptors which process holds that socket. It waits up to limit for a
// holder (the slot is free for a moment after a failover).
func (r *procRun) holder(ctx context.Context, limit time.Duration) (int, error) {
	deadline := time.Now().Add(limit)
	var last error
	for {
		i, err := r.holderNow(ctx)
		if err == nil {
			return i, nil
		}
		last = err
		if time.Now().After(deadline) {
			return -1, fmt.Errorf("check: no feed holder within %v: %w", limit, last)
		}
		if err := sleepCtx(ctx, 50*time.Millisecond); err != nil { // polling PostgreSQL
			return -1, err
		}
	}
}

func (r *procRun) holderNow(ctx context.Context) (int, error) {
	var port sql.NullInt64
	err := r.c.db.QueryRowContext(ctx, "SELECT a.client_port FROM pg_replication_slots s "+
		"JOIN pg_stat_activity a ON a.pid = s.active_pid WHERE s.slot_name = $1", feedSlot).Scan(&port)
	if err != nil {
		return -1, fmt.Errorf("slot %s: %w", feedSlot, err)
	}
	if !port.Valid {
		return -1, fmt.Errorf("slot %s: walsender without a TCP client", feedSlot)
	}
	inode, err := socketInode(int(port.Int64))
	if err != nil {
		return -1, err
	}
	for i, p := range r.c.procs {
		p.mu.Lock()
		pid := 0
		if p.cmd != nil && p.cmd.Process != nil && p.state != procDown {
			pid = p.cmd.Process.Pid
		}
		p.mu.Unlock()
		if pid != 0 && holdsSocket(pid, inode) {
			return i, nil
		}
	}
	return -1, fmt.Errorf("no node process holds the socket of client port %d (inode %s)", port.Int64, inode)
}

// socketInode returns the inode of the TCP socket bound to 127.0.0.1:port
// (a client's local end).
func socketInode(port int) (string, error) {
	f, err := os.Open("/proc/net/tcp")
	if err != nil {
		return "", fmt.Errorf("check: %w", err)
	}
	defer f.Close()
	want := fmt.Sprintf("0100007F:%04X", port)
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
		fs := strings.Fields(sc.Text())
		if len(fs) >= 10 && fs[1] == want && fs[9] != "0" {
			return fs[9], nil
		}
	}
	if err := sc.Err(); err != nil {
		return "", fmt.Errorf("check: /proc/net/tcp: %w", err)
	}
	return "", fmt.Errorf("check: no socket bound to 127.0.0.1:%d", port)
}

// holdsSocket reports whether process pid has the socket inode open.
func holdsSocket(pid int, inode string) bool {
	dir := filepath.Join("/proc", strconv.Itoa(pid), "fd")
	fds, err := os.ReadDir(dir)
	if err != nil {
		return false
	}
	want := "socket:[" + inode + "]"
	for _, fd := range fds {
		if l, err := os.Readlink(filepath.Join(dir, fd.Name())); err == nil && l == want {
			return true
		}
	}
	return false
}

// waitLogFresh waits until every node serves a cached value (a hit on
// probeKey): its feed progress is fresh, so the workload starts on a
// cluster that serves from its caches.
func (r *procRun) waitLogFresh(ctx context.Context, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for _, p := range r.c.procs {
		base := p.view().base
		for {
			before, err := r.c.counters(ctx, base)
			if err == nil {
				_, _ = r.c.get(ctx, base, probeKey, 2*time.Second) // not recorded: probeKey is no workload key
				_, _ = r.c.get(ctx, base, probeKey, 2*time.Second)
				var after groupCounters
				if after, err = r.c.counters(ctx, base); err == nil && after.Hits > before.Hits {
					break
				}
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("check: %s served no cached value within %v (is its feed progressing?): %v", p.name, limit, err)
			}
			if err := sleepCtx(ctx, 50*time.Millisecond); err != nil { // polling another process
				return err
			}
		}
	}
	return nil
}

// feedFault applies a fault to the feed's holder: ProcStopHolder stops it
// (the feed is cut off while writes go on) for feedStop, ProcKillHolder
// kills it (another node takes the slot over) for ProcessConfig.Down.
// Either way the holder counts as cut off from the fault's start until
// MaxStaleness after it is ready again.
func (r *procRun) feedFault(ctx context.Context, f ProcFault, ev Event) (Event, error) {
	i, err := r.holder(ctx, 10*time.Second)
	if err != nil {
		return ev, err
	}
	p := r.c.procs[i]
	v := p.view()
	ev.Node, ev.Nodes = v.label, []string{v.label}
	r.cfg.Logger.Info("fault", "fault", f, "node", ev.Node)
	ev.Start = r.rec.Now()
	switch f {
	case ProcStopHolder:
		d := r.feedStop()
		r.cacheFeedWitnesses(ctx)
		ev.Start = r.rec.Now()
		if err := p.stop(ctx, 5*time.Second); err != nil {
			_ = p.signal(syscall.SIGCONT)
			return ev, err
		}
		done := make(chan struct{})
		r.wg.Go(func() { defer close(done); r.witnessReads(ctx, i, ev.Start+int64(d)) })
		r.patientReads(ctx, p, d, r.rng, nil)
		<-done
		if err := p.signal(syscall.SIGCONT); err != nil {
			return ev, err
		}
		r.burst(ctx, p, time.Second)
		for _, q := range r.c.procs {
			if err := r.c.waitReady(ctx, q, 30*time.Second); err != nil {
				return ev, err
			}
		}
	case ProcKillHolder:
		if err := p.kill(); err != nil {
			return ev, err
		}
		if err := sleepCtx(ctx, r.cfg.Down); err != nil {
			return ev, err
		}
		if err := r.c.restart(ctx, p); err != nil {
			return ev, err
		}
	default:
		return ev, fmt.Errorf("check: %q is no feed fault", f)
	}
	if j, err := r.holder(ctx, 10*time.Second); err != nil {
		return ev, errors.Join(errors.New("check: the feed has no holder after the fault"), err)
	} else {
		r.cfg.Logger.Info("feed holder", "node", r.c.procs[j].view().label)
	}
	ev.End = r.rec.Now() + int64(r.cfg.MaxStaleness)
	return ev, nil
}

// cacheFeedWitnesses reads every witness through every node, twice: each
// node caches it (a build that serves cached values regardless serves it
// from there during the stop).
func (r *procRun) cacheFeedWitnesses(ctx context.Context) {
	for range 2 {
		for _, p := range r.c.procs {
			for _, k := range feedWitnesses {
				_, _ = r.readThrough(ctx, p, k, 2*time.Second)
			}
		}
	}
}

// witnessReads updates the witnesses in PostgreSQL (the holder is stopped:
// no node hears of it), then, from MaxStaleness plus 200 ms after the last
// update returned until until (recorder time), reads every witness through
// every node but the holder every 100 ms. A node may serve the old version
// only until MaxStaleness after the update (G9): so many reads, spread
// over the rest of the stop, catch a build that serves it longer even on
// a starved machine, where the random workload may read little (seen: 219
// reads in a 5 s stop, under two CPU hogs; 32 violations where thousands
// are usual).
func (r *procRun) witnessReads(ctx context.Context, holder int, until int64) {
	for j, k := range feedWitnesses {
		_ = r.writePostgres(ctx, k, fmt.Sprintf("witness-%d", j))
	}
	from := r.rec.Now() + int64(r.cfg.MaxStaleness) + int64(200*time.Millisecond)
	if err := sleepCtx(ctx, time.Duration(from-r.rec.Now())); err != nil {
		return
	}
	for n := 0; r.rec.Now() < until || n == 0; n++ {
		for i, p := range r.c.procs {
			if i == holder {
				continue
			}
			for _, k := range feedWitnesses {
				_, _ = r.readThrough(ctx, p, k, 2*time.Second)
			}
		}
		if sleepCtx(ctx, 100*time.Millisecond) != nil {
			return
		}
	}
}

// feedStop is how long ProcStopHolder stops the holder: three times
// MaxStaleness, so every node's feed progress runs out for two thirds of it
// while writes go on (a build that serves cached values regardless serves
// values superseded for up to 2 MaxStaleness).
func (r *procRun) feedStop() time.Duration { return 3 * r.cfg.MaxStaleness }
