//go:build linux

package check

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// ProcFault is one fault of a process campaign ([RunProcessCampaign]).
type ProcFault string

// The faults a process campaign knows. Every fault ends with the node
// running again (a restart keeps its name and, when free, its ports).
const (
	// ProcKillOwner is kill -9 of the owner of the hottest key; it stays
	// down for ProcessConfig.Down, then restarts.
	ProcKillOwner ProcFault = "kill-9-owner"
	// ProcKillOther is kill -9 of a node that does not own the hottest key.
	ProcKillOther ProcFault = "kill-9-non-owner"
	// ProcStopShort is SIGSTOP of a random node for 2s, then SIGCONT.
	ProcStopShort ProcFault = "sigstop-2s"
	// ProcStopLong is SIGSTOP of a random node for 30s, then SIGCONT.
	ProcStopLong ProcFault = "sigstop-30s"
	// ProcStopWakeAlone is SIGSTOP of a random node for 30s, and on until
	// the others have counted it out of their members for deadQuiet (so
	// they send it nothing any more). Witness keys (see wakealone.go),
	// cached on the node before the stop, are then superseded through
	// another node, and read through the stopped node once that write is
	// older than MaxStaleness plus slack; then every other node is stopped,
	// the node resumed, and the others resumed once it has answered the
	// witness reads and a one-second burst of reads. It wakes to a cluster
	// that cannot answer (a partition, as far as it can tell), knowing
	// nothing of the witnesses' write: without the trust lease it serves
	// what it cached before; with it, nothing cached. (After a plain
	// ProcStopLong the node may catch up from its peers before it serves
	// its first queued read, and a build without the lease goes
	// unpunished: seen in a full `make test` run.)
	ProcStopWakeAlone ProcFault = "sigstop-30s-wake-alone"
	// ProcRestart is kill -9 of a random node and its restart at once,
	// before the others notice it died.
	ProcRestart ProcFault = "restart-same-name"
	// ProcRestartMoved is kill -9 of a random node and its restart at once
	// on new ports (a new address, as a rescheduled pod comes back): the
	// others still list the old address for its name until they count it
	// dead, and the new process must not trust its cache, nor be left out
	// of AckAll writes, meanwhile (issue 11).
	ProcRestartMoved ProcFault = "restart-new-address"
	// ProcRolling is SIGTERM and restart of every node, one by one, each
	// waited for until ready.
	ProcRolling ProcFault = "rolling-restart"
	// ProcStopHolder is SIGSTOP, for 3 × MaxStaleness, of the node whose
	// feed holds the replication slot (ProcessConfig.Postgres only): the
	// feed is cut off while writes to PostgreSQL go on, so every node must
	// stop serving cached values within MaxStaleness (G9); the slot stays
	// held by the stopped process (its connection lives), so nobody takes
	// over meanwhile.
	ProcStopHolder ProcFault = "sigstop-feed-holder"
	// ProcKillHolder is kill -9 of the feed's holder (ProcessConfig.Postgres
	// only); it stays down for ProcessConfig.Down, then restarts, while
	// another node takes the slot over and resumes from the confirmed
	// position.
	ProcKillHolder ProcFault = "kill-9-feed-holder"
)

// PostgresProcFaults returns the faults of a process campaign in the
// PostgreSQL mode (ProcessConfig.Postgres) by default: the feed's holder
// stopped, then killed.
func PostgresProcFaults() []ProcFault { return []ProcFault{ProcStopHolder, ProcKillHolder} }

// AllProcFaults returns every process fault, in a campaign's default order.
func AllProcFaults() []ProcFault {
	return []ProcFault{ProcKillOwner, ProcKillOther, ProcStopShort, ProcRestart, ProcRestartMoved, ProcStopLong, ProcStopWakeAlone, ProcRolling}
}

// stopFor is how long a SIGSTOP fault keeps its node stopped.
func (f ProcFault) stopFor() time.Duration {
	switch f {
	case ProcStopShort:
		return 2 * time.Second
	case ProcStopLong, ProcStopWakeAlone:
		return 30 * time.Second
	}
	return 0
}

// ProcessConfig configures [RunProcessCampaign]. Zero fields take the
// default beside them.
type ProcessConfig struct {
	Binary       string        // the nearcache binary; required
	Dir          string        // for the SQLite source, the gossip key and logs/ (one file per incarnation); required
	Seed         int64         // schedule and workload seed
	Nodes        int           // 0 = 3
	Keys         int           // 0 = 50
	HotKeys      int           // the first HotKeys keys get half of the operations; 0 = 5
	Readers      int           // reader goroutines, each reading through a random running node; 0 = 4 (plus one per node that reads through it whatever its state)
	Writers      int           // writer goroutines, each writing through a random running node; 0 = 2
	WritePause   time.Duration // a writer's pause between writes; 0 = 5ms
	ReadPause    time.Duration // a reader's pause between reads; 0 = none
	Faults       []ProcFault   // the schedule; nil = AllProcFaults()
	Duration     time.Duration // repeat the schedule until this long has passed; 0 = one pass
	Down         time.Duration // how long a killed node stays down; 0 = 3s
	Calm         time.Duration // healthy time before each fault; 0 = 1s
	Converge     time.Duration // how long the cluster may take to converge after a fault; 0 = 15s
	MaxStaleness time.Duration // the nodes' --max-staleness; 0 = 2s
	LogLevel     string        // the nodes' --log-level; "" = info
	Logger       *slog.Logger  // nil = discard
	// Postgres, when set, is the DSN of a PostgreSQL server with
	// wal_level=logical and a role with REPLICATION (internal/pgtest with
	// Options.Logical): the source is its items table (created, REPLICA
	// IDENTITY FULL), the nodes run with --feed, the writers write to it
	// directly (no node sees a write but through the commit log), and G9 is
	// checked on every read (see processpg.go). Faults default to
	// PostgresProcFaults().
	Postgres string
	// Unseeded leaves the last node out of every other node's --join list
	// (it joins them; they never dial it), and makes it ProcStopWakeAlone's
	// target. A node's rejoin loop dials the seeds it does not count as
	// live every RejoinInterval, and each attempt's TCP push/pull carries
	// its state (the newest invalidations, the witnesses' among them): the
	// kernel queues them for the stopped node, and on SIGCONT it merges
	// them while it serves the witness reads, so what it serves depends on
	// which goroutine ran first (wakealone.go). Off, ProcStopWakeAlone
	// stops a random node.
	Unseeded bool
}

func (c ProcessConfig) withDefaults() ProcessConfig {
	c.Nodes = cmp.Or(c.Nodes, 3)
	c.Keys = cmp.Or(c.Keys, 50)
	c.HotKeys = cmp.Or(c.HotKeys, 5)
	c.Readers = cmp.Or(c.Readers, 4)
	c.Writers = cmp.Or(c.Writers, 2)
	c.WritePause = cmp.Or(c.WritePause, 5*time.Millisecond)
	c.Down = cmp.Or(c.Down, 3*time.Second)
	c.Calm = cmp.Or(c.Calm, time.Second)
	c.Converge = cmp.Or(c.Converge, 15*time.Second)
	c.MaxStaleness = cmp.Or(c.MaxStaleness, 2*time.Second)
	c.LogLevel = cmp.Or(c.LogLevel, "info")
	if c.Faults == nil {
		c.Faults = AllProcFaults()
		if c.Postgres != "" {
			c.Faults = PostgresProcFaults()
		}
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

func (c ProcessConfig) validate() error {
	switch {
	case c.Binary == "":
		return errors.New("check: Binary is required")
	case c.Dir == "":
		return errors.New("check: Dir is required")
	case c.Nodes < 0 || c.Keys < 0 || c.HotKeys < 0 || c.Readers < 0 || c.Writers < 0:
		return errors.New("check: counts must not be negative")
	case c.WritePause < 0 || c.ReadPause < 0 || c.Duration < 0 || c.Down < 0 || c.Calm < 0 || c.Converge < 0 || c.MaxStaleness < 0:
		return errors.New("check: durations must not be negative")
	case c.Nodes == 1 || c.Nodes == 2:
		return errors.New("check: a process campaign needs at least 3 nodes (a killed node must leave a majority)")
	case c.HotKeys > c.Keys && c.Keys != 0:
		return errors.New("check: HotKeys must not exceed Keys")
	}
	for _, f := range c.Faults {
		switch {
		case (f == ProcStopHolder || f == ProcKillHolder) && c.Postgres == "":
			return fmt.Errorf("check: fault %s needs a feed (ProcessConfig.Postgres)", f)
		case f == ProcStopWakeAlone && c.Postgres != "":
			// Its witness writes go through a node and its quiescing is
			// about SQLite's lock: not made for, nor run in, this mode.
			return fmt.Errorf("check: fault %s is not supported with ProcessConfig.Postgres", f)
		}
	}
	return nil
}

// procRun is one process campaign in progress.
type procRun struct {
	cfg   ProcessConfig
	c     *procCluster
	rec   *Recorder
	keys  []string
	owner int        // the slot owning keys[0]
	woke  int        // ProcStopWakeAlone faults so far (each has its own witness key)
	rng   *rand.Rand // the faults' (used by the schedule's goroutine only)
	wg    sync.WaitGroup
}

// RunProcessCampaign starts cfg.Nodes `nearcache node` processes on
// 127.0.0.1 over one SQLite file, drives an HTTP workload through them (every
// request recorded), injects the faults of the schedule in turn (each
// followed by a convergence check against the source), stops every process,
// and returns the checker's report and the history. A process's stderr goes
// to cfg.Dir/logs/<name>@<incarnation>.log. It stops early when ctx ends.
func RunProcessCampaign(ctx context.Context, cfg ProcessConfig) (Report, *History, error) {
	if err := cfg.validate(); err != nil {
		return Report{}, nil, err
	}
	cfg = cfg.withDefaults()
	keys := make([]string, cfg.Keys)
	for i := range keys {
		keys[i] = "k" + strconv.Itoa(i)
	}
	c, err := newProcCluster(ctx, cfg, keys)
	if err != nil {
		return Report{}, nil, err
	}
	defer c.close()
	if err := c.startAll(ctx); err != nil {
		return Report{}, nil, err
	}
	r := &procRun{cfg: cfg, c: c, rec: NewRecorder(), keys: keys}
	if cfg.Postgres != "" {
		if err := r.waitLogFresh(ctx, 30*time.Second); err != nil {
			return Report{}, nil, err
		}
	}
	// The owner of the hottest key, asked while the cluster is quiet.
	if r.owner, err = c.ownerOf(ctx, keys[0]); err != nil {
		return Report{}, nil, err
	}
	cfg.Logger.Info("owner", "key", keys[0], "node", c.procs[r.owner].name)
	r.rng = rand.New(rand.NewPCG(uint64(cfg.Seed), 0x70726f63))
	p := plan[ProcFault]{
		params:        Params{Seed: cfg.Seed, MaxStaleness: cfg.MaxStaleness, Slack: cfg.MaxStaleness / 2, LogFed: cfg.Postgres != ""},
		faults:        cfg.Faults,
		duration:      cfg.Duration,
		calm:          cfg.Calm,
		converge:      cfg.Converge,
		keys:          keys,
		hotKeys:       cfg.HotKeys,
		nodeReaders:   1,
		randomReaders: cfg.Readers,
		readPause:     cfg.ReadPause,
		readErrPause:  20 * time.Millisecond,
		writers:       cfg.Writers,
		writePause: func(rng *rand.Rand, err error) time.Duration {
			pause := cfg.WritePause/2 + time.Duration(rng.Int64N(int64(cfg.WritePause)))
			if err != nil {
				pause += 20 * time.Millisecond
			}
			return pause
		},
		trustPoll:    100 * time.Millisecond,
		convergePoll: 50 * time.Millisecond,
		logger:       cfg.Logger,
	}
	return drive(ctx, p, r.rec, &r.wg, r)
}

// readThrough sends one GET to p and records it under the incarnation it went to.
func (r *procRun) readThrough(ctx context.Context, p *proc, key string, timeout time.Duration) (uint64, error) {
	v := p.view()
	start := r.rec.Now()
	ver, err := r.c.get(ctx, v.base, key, timeout)
	end := r.rec.Now()
	if ctx.Err() != nil {
		return 0, ctx.Err() // cut short by the end of the run: not a result
	}
	if err == nil && p.incarnation() != v.inc {
		// A restart began meanwhile: which process answered is unknown.
		err = errors.New("incarnation changed during the request")
	}
	r.rec.Read(v.label, key, start, end, ver, err)
	return ver, err
}

// pickUp returns a random node that runs (not killed, not stopped), as a
// load balancer probing the nodes would; any node if none does.
func (r *procRun) pickUp(rng *rand.Rand) int {
	ps := r.c.procs
	start := rng.IntN(len(ps))
	for i := range ps {
		if j := (start + i) % len(ps); ps[j].view().state == procUp {
			return j
		}
	}
	return start
}

// writeThrough sends one PUT to p and records it under the incarnation it went
// to; ack reports whether AckAll held (every member acknowledged). The
// request is not cut short when ctx ends: its outcome is recorded.
// While p holds writes back (proc.holdWrites) it sends and records nothing
// and returns errWritesHeld.
func (r *procRun) writeThrough(ctx context.Context, p *proc, key, value string) (a putAnswer, ack bool, err error) {
	if !p.beginWrite() {
		return putAnswer{}, false, errWritesHeld
	}
	defer p.endWrite()
	v := p.view()
	start := r.rec.Now()
	a, err = r.c.put(context.WithoutCancel(ctx), v.base, key, value, 5*time.Second)
	end := r.rec.Now()
	if err == nil && p.incarnation() != v.inc {
		err = errors.New("incarnation changed during the request")
	}
	if err != nil {
		a = putAnswer{} // the version it may have committed is unknown
	}
	// AckAll holds only when every member acknowledged (no not_acknowledged).
	ack = err == nil && len(a.NotAcknowledged) == 0 && a.InvalidationError == ""
	r.rec.Write(v.label, key, a.Version, start, start, end, ack, err)
	return a, ack, err
}

// errWritesHeld is write's error for a node that holds writes back.
var errWritesHeld = errors.New("check: writes through this node are held back")

// The back end of [drive]: procRun is a backend[ProcFault].

func (r *procRun) nodes() int { return len(r.c.procs) }

func (r *procRun) read(ctx context.Context, i int, key string) (uint64, error) {
	return r.readThrough(ctx, r.c.procs[i], key, 2*time.Second)
}

// write PUTs key through node i. The commit time is taken as the request's
// start (the PUT writes the source first): staleness is measured from at
// most the SQL write's latency too early.
//
// With ProcessConfig.Postgres the write goes to PostgreSQL directly instead,
// whatever i (writePostgres).
func (r *procRun) write(ctx context.Context, i int, key string, writer, seq int, _ *rand.Rand) error {
	if r.cfg.Postgres != "" {
		return r.writePostgres(ctx, key, fmt.Sprintf("w%d-%d", writer, seq))
	}
	_, _, err := r.writeThrough(ctx, r.c.procs[i], key, fmt.Sprintf("w%d-%d", writer, seq))
	return err
}

// trust reports an incarnation's trust flag (its /readyz); a node that is
// not running, or does not answer, cannot be asked.
func (r *procRun) trust(ctx context.Context, i int) (string, bool, bool) {
	v := r.c.procs[i].view()
	if v.state != procUp {
		return v.label, false, false
	}
	rd, err := r.c.readyz(ctx, v.base)
	if err != nil {
		return v.label, false, false
	}
	return v.label, rd.Trusted, true
}

// ready requires the node to run and its /readyz to say ready.
func (r *procRun) ready(ctx context.Context, i int) (string, string) {
	v := r.c.procs[i].view()
	if v.state != procUp {
		return v.label, v.label + " is not running"
	}
	if rd, err := r.c.readyz(ctx, v.base); err != nil || !rd.Ready {
		return v.label, fmt.Sprintf("%s not ready: %+v %v", v.label, rd, err)
	}
	return v.label, ""
}

func (r *procRun) source(ctx context.Context, key string) (uint64, error) {
	return r.c.sourceVersion(ctx, key)
}

func (r *procRun) inject(ctx context.Context, f ProcFault) error { return r.fault(ctx, f, r.rng) }

// fault applies f and returns once every node runs again and is ready. It
// records the fault: a stopped node counts as cut off (G5) from the SIGSTOP
// until MaxStaleness after it is ready again; a killed node serves nothing,
// and its next incarnation starts empty, so a kill cuts nobody off.
func (r *procRun) fault(ctx context.Context, f ProcFault, rng *rand.Rand) error {
	ps := r.c.procs
	log := r.cfg.Logger
	ev := Event{Kind: KindFault, Fault: string(f)}
	switch f {
	case ProcKillOwner, ProcKillOther, ProcRestart, ProcRestartMoved:
		i := rng.IntN(len(ps))
		switch f {
		case ProcKillOwner:
			i, ev.Key = r.owner, r.keys[0]
		case ProcKillOther:
			i = (r.owner + 1 + rng.IntN(len(ps)-1)) % len(ps)
		}
		p := ps[i]
		ev.Node = p.view().label
		log.Info("fault", "fault", f, "node", ev.Node)
		ev.Start = r.rec.Now()
		if err := p.kill(); err != nil {
			return err
		}
		switch f {
		case ProcRestart:
		case ProcRestartMoved:
			if err := r.c.movePorts(p); err != nil {
				return err
			}
		default:
			if err := sleepCtx(ctx, r.cfg.Down); err != nil {
				return err
			}
		}
		if err := r.c.restart(ctx, p); err != nil {
			return err
		}
		ev.End = r.rec.Now()
	case ProcStopShort, ProcStopLong, ProcStopWakeAlone:
		p := ps[rng.IntN(len(ps))]
		if f == ProcStopWakeAlone && r.cfg.Unseeded {
			p = ps[len(ps)-1] // the node nobody dials (ProcessConfig.Unseeded)
		}
		v := p.view()
		ev.Node, ev.Nodes = v.label, []string{v.label}
		log.Info("fault", "fault", f, "node", ev.Node)
		var w string
		if f == ProcStopWakeAlone {
			// Not stopped inside a source write: the witnesses' write
			// would wait for the node's SQLite lock until it woke.
			defer p.releaseWrites()
			if err := r.quiesceWrites(ctx, p); err != nil {
				return err
			}
			var err error
			if w, err = r.cacheWitness(ctx, p); err != nil {
				return err
			}
		}
		if f == ProcStopWakeAlone {
			r.logSnapshot(ctx, p, "before the stop")
		}
		ev.Start = r.rec.Now()
		if f == ProcStopWakeAlone {
			if err := p.stop(ctx, 5*time.Second); err != nil {
				_ = p.signal(syscall.SIGCONT)
				return err
			}
		} else if err := p.signal(syscall.SIGSTOP); err != nil {
			return err
		}
		var answered chan struct{}
		if f == ProcStopWakeAlone {
			var err error
			if answered, err = r.wakeAloneWitness(ctx, p, w, rng); err != nil {
				_ = p.signal(syscall.SIGCONT)
				return err
			}
		} else {
			r.patientReads(ctx, p, f.stopFor(), rng, nil)
		}
		var others []*proc
		var frozen Event
		var err error
		if f == ProcStopWakeAlone {
			others, frozen, err = r.freezeOthers(ctx, p)
		}
		err = errors.Join(err, p.signal(syscall.SIGCONT))
		if err == nil && answered != nil {
			r.awaitWitness(ctx, p, answered)
			r.logSnapshot(ctx, p, "witness reads answered")
		}
		if err == nil {
			r.burst(ctx, p, time.Second)
		}
		if len(others) > 0 {
			err = errors.Join(err, r.thaw(others, frozen))
		}
		if err != nil {
			return err
		}
		for _, q := range append(others, p) {
			if err := r.c.waitReady(ctx, q, 30*time.Second); err != nil {
				return err
			}
		}
		ev.End = r.rec.Now() + int64(r.cfg.MaxStaleness)
	case ProcStopHolder, ProcKillHolder:
		var err error
		if ev, err = r.feedFault(ctx, f, ev); err != nil {
			return err
		}
	case ProcRolling:
		log.Info("fault", "fault", f)
		ev.Start = r.rec.Now()
		for _, p := range ps {
			p.terminate(15 * time.Second)
			if err := r.c.restart(ctx, p); err != nil {
				return err
			}
		}
		ev.End = r.rec.Now()
	default:
		return fmt.Errorf("check: unknown process fault %q", f)
	}
	r.rec.Add(ev)
	return nil
}

// freezeOthers SIGSTOPs every running node but p, waits until each is
// really stopped (proc.stop: none may answer p once it wakes), and records
// them as cut off from then (the fault event it returns for thaw, without a
// Node: the fault targets p). It returns the nodes it signalled, and an
// error if one of them did not stop.
func (r *procRun) freezeOthers(ctx context.Context, p *proc) ([]*proc, Event, error) {
	ev := Event{Kind: KindFault, Fault: string(ProcStopWakeAlone), Start: r.rec.Now()}
	var out []*proc
	var errs error
	for _, q := range r.c.procs {
		if q == p || q.view().state != procUp {
			continue
		}
		err := q.stop(ctx, 5*time.Second)
		if q.view().state == procStopped {
			out = append(out, q)
			ev.Nodes = append(ev.Nodes, q.view().label)
		}
		errs = errors.Join(errs, err)
	}
	return out, ev, errs
}

// thaw SIGCONTs the nodes freezeOthers stopped and records their cut-off
// window, ev, as closing MaxStaleness after now (they were stopped past
// their lease).
func (r *procRun) thaw(qs []*proc, ev Event) error {
	var err error
	for _, q := range qs {
		err = errors.Join(err, q.signal(syscall.SIGCONT))
	}
	ev.End = r.rec.Now() + int64(r.cfg.MaxStaleness)
	r.rec.Add(ev)
	return err
}

// patientReads sends, for d, a read of a hot key to the stopped node p every
// 100ms, each waiting for the node to resume: they sit in its socket queue,
// and it serves them the moment SIGCONT arrives, before it can have noticed
// how long it was away. It returns after d and, when until is not nil, once
// until reports true (it is asked every 100ms from the start), or after
// d+maxPatience whatever until says; the reads finish on their own.
func (r *procRun) patientReads(ctx context.Context, p *proc, d time.Duration, rng *rand.Rand, until func(context.Context) bool) bool {
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	timeUp := time.NewTimer(d)
	defer timeUp.Stop()
	limit := time.NewTimer(d + maxPatience)
	defer limit.Stop()
	waited, met := false, until == nil
	for {
		select {
		case <-ctx.Done():
			return false
		case <-limit.C:
			r.cfg.Logger.Warn("stop", "node", p.name, "err", "condition not met")
			return false
		case <-timeUp.C:
			waited = true
		case <-t.C:
			key := r.keys[rng.IntN(r.cfg.HotKeys)]
			r.wg.Go(func() { _, _ = r.readThrough(ctx, p, key, d+maxPatience+15*time.Second) })
			if !met {
				met = until(ctx)
			}
		}
		if waited && met {
			return true
		}
	}
}

// maxPatience is how much longer than planned a stop may last while
// patientReads waits for its condition.
const maxPatience = 30 * time.Second

// deadQuiet is how long a stopped node must have been out of every other
// node's live members before ProcStopWakeAlone wakes it: by then nobody
// sends it anything, not even gossip to the dead (GossipToTheDeadTime is
// 15s in the local profile the nodes run), nor, when it is the node
// nobody seeds (ProcessConfig.Unseeded), a rejoin's state, so it wakes
// knowing nothing of the writes of the last seconds.
const deadQuiet = 15*time.Second + 3*time.Second

// countedOut returns a condition for patientReads: every other running node
// has left p out of its live members for deadQuiet. A node that cannot be
// asked counts as still counting p in.
func (r *procRun) countedOut(p *proc) func(context.Context) bool {
	var since time.Time
	return func(ctx context.Context) bool {
		for _, q := range r.c.procs {
			if q == p || q.view().state != procUp {
				continue
			}
			if r.c.isMember(ctx, q.view().base, p.name) {
				since = time.Time{}
				return false
			}
		}
		if since.IsZero() {
			since = time.Now()
			r.cfg.Logger.Info("counted out", "node", p.name)
		}
		return time.Since(since) >= deadQuiet
	}
}

// burst reads every key through p, from 4 goroutines at once, for d after
// it resumed: what it serves before it catches up is what G5 bounds.
func (r *procRun) burst(ctx context.Context, p *proc, d time.Duration) {
	bctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := g; bctx.Err() == nil; i++ {
				_, _ = r.readThrough(bctx, p, r.keys[i%len(r.keys)], d)
			}
		})
	}
	wg.Wait()
}
