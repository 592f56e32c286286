package gossip

import (
	"cmp"
	"context"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"
)

// Cluster is this node's membership in a nearcache gossip cluster.
type Cluster struct {
	cfg  Config
	lw   *logWriter
	ml   *memberlist.Memberlist
	bq   *memberlist.TransmitLimitedQueue
	done chan struct{}
	kick chan struct{} // send heartbeats now (a peer joined)
	wg   sync.WaitGroup

	toTheDead time.Duration // memberlist's GossipToTheDeadTime

	keyring *memberlist.Keyring // nil = plaintext
	keyMu   sync.Mutex          // serialises SetKeyring

	closeOnce sync.Once
	numNodes  atomic.Int64 // live members incl. self, for the broadcast queue
	st        counters
	disp      dispatcher

	// mu guards the fields below. Never call memberlist while holding it:
	// memberlist calls our event delegate with its node lock held.
	mu       sync.Mutex
	closed   bool
	left     bool
	self     memberlist.Node
	inc      uint64 // incarnation: start time in unix nanos, or past the cluster's memory (see outgrowLocked)
	seq      uint64 // last seq published in inc
	hbSeq    uint64 // last heartbeatMsg.Seq sent in inc
	log      *recentLog
	streams  map[streamKey]*stream
	current  map[string]uint64 // origin -> newest incarnation seen
	peers    map[string]*peer
	everPeer bool
	synced   bool
	waiters  map[*ackWaiter]struct{}

	started     time.Time // Start, with its monotonic reading
	wallAtStart int64     // the wall clock at Start, unix nanos (see plausible)

	joinMu         sync.Mutex
	joinFails      int       // join attempts in a row that reached no seed
	joinWarned     time.Time // last noteJoin WARN
	rejectLogged   time.Time // last rejectLocked log line
	rejectLoggedAt uint64    // counters.rejected then
}

type peer struct {
	node      memberlist.Node // copy
	state     string          // "alive", "dead" or "left"
	since     time.Time       // of the last state change
	lastHeard time.Time       // its stream (batch or heartbeat) or its join
	spoke     time.Time       // its last heartbeat naming our incarnation: it counts us, this process, as a live member
	inc       uint64          // the highest incarnation heard from it (its batches, heartbeats)
	hbInc     uint64          // incarnation of the last heartbeat taken as news of it
	hbSeq     uint64          // heartbeatMsg.Seq of that heartbeat: a lower or equal one is a replay or late
	leaving   uint64          // the incarnation it announced a graceful leave of (0: none)
}

// leftGracefully reports whether p announced a leave of the incarnation this
// node heard from it. A leave naming another incarnation (a replay of an
// earlier life's leave, or a forgery) does not count: a member counted as
// left is no longer waited for by AckAll writes, so an accepted forgery would
// let writes succeed without it.
func (p *peer) leftGracefully() bool { return p.leaving != 0 && p.leaving == p.inc }

type counters struct {
	published, msgSent, msgRecv, received, dups, gaps, repaired, unrepairable,
	acks, hbSent, hbRecv, pushPulls, rejoins, decodeErrs, outgrown atomic.Uint64
	rejected, streamsRefused, streamsCut atomic.Uint64
}

// Start validates cfg, starts memberlist and tries the seeds in cfg.Join
// until one answers or ctx ends. ctx ending is not an error: Start then
// returns the running cluster, alone, and the rejoin loop keeps trying the
// seeds every RejoinInterval. With seeds, pass a ctx with a deadline: Start
// keeps trying them until it ends. Configuration and bind errors are errors.
func Start(ctx context.Context, cfg Config) (*Cluster, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	lw := &logWriter{l: cfg.Logger}
	mc, err := cfg.memberlistConfig(lw)
	if err != nil {
		return nil, err
	}
	started := time.Now()
	c := &Cluster{
		cfg:         cfg,
		lw:          lw,
		started:     started,
		wallAtStart: started.UnixNano(),
		inc:         cmp.Or(cfg.incarnation, uint64(started.UnixNano())),
		done:        make(chan struct{}),
		kick:        make(chan struct{}, 1),
		log:         newRecentLog(cfg.RecentLog),
		streams:     make(map[streamKey]*stream),
		current:     make(map[string]uint64),
		peers:       make(map[string]*peer),
		waiters:     make(map[*ackWaiter]struct{}),
	}
	c.numNodes.Store(1)
	c.toTheDead = mc.GossipToTheDeadTime
	c.keyring = mc.Keyring
	lt := newLimitedTransport(mc.Transport, cfg.MaxStreams, cfg.MaxStreamsPerSource, cfg.MaxStreamBytes,
		&c.st.streamsRefused, &c.st.streamsCut, cfg.Logger.Warn)
	mc.Transport = lt
	c.disp.init()
	c.bq = &memberlist.TransmitLimitedQueue{
		NumNodes:       func() int { return int(c.numNodes.Load()) },
		RetransmitMult: mc.RetransmitMult,
	}
	d := &delegate{c: c}
	mc.Delegate = d
	mc.Events = d
	ml, err := memberlist.Create(mc)
	if err != nil {
		lt.Shutdown()
		return nil, fmt.Errorf("gossip: start: %w", err)
	}
	c.ml = ml
	c.disp.membersChanged() // the Handler gets the initial member list
	c.wg.Add(4)
	go c.dispatchLoop()
	go c.heartbeatLoop()
	go c.repairLoop()
	go c.rejoinLoop()

	if len(cfg.Join) > 0 {
		retry := time.NewTimer(0)
		defer retry.Stop()
	loop:
		for {
			select {
			case <-ctx.Done():
				break loop
			case <-retry.C:
			}
			n, err := c.Join(ctx, cfg.Join)
			if ctx.Err() == nil {
				c.noteJoin(n, err, cfg.Join)
			}
			if n > 0 {
				break
			}
			retry.Reset(min(cfg.RejoinInterval, 200*time.Millisecond))
		}
	}
	return c, nil
}

// Join contacts the given "host:port" addresses (DNS names are resolved)
// and returns how many answered. It returns when the attempt ends or ctx
// does; the attempt itself is bounded by memberlist's TCP timeout.
func (c *Cluster) Join(ctx context.Context, addrs []string) (int, error) {
	type result struct {
		n   int
		err error
	}
	ch := make(chan result, 1)
	if !c.spawn(func() {
		n, err := c.ml.Join(addrs)
		ch <- result{n, err}
	}) {
		return 0, ErrClosed
	}
	select {
	case r := <-ch:
		if r.n == 0 && r.err != nil {
			return 0, fmt.Errorf("gossip: join: %w", r.err)
		}
		return r.n, nil
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

// spawn runs f on a goroutine Close waits for, unless the cluster is closed.
func (c *Cluster) spawn(f func()) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return false
	}
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		f()
	}()
	return true
}

// LocalName returns this node's name.
func (c *Cluster) LocalName() string { return c.cfg.Name }

// LocalAddr returns the advertised "host:port".
func (c *Cluster) LocalAddr() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.self.Address()
}

// Members returns the live members, self included, sorted by name.
func (c *Cluster) Members() []Member {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.membersLocked()
}

func (c *Cluster) membersLocked() []Member {
	out := []Member{toMember(&c.self, "alive")}
	for _, p := range c.peers {
		if p.state == "alive" {
			out = append(out, toMember(&p.node, "alive"))
		}
	}
	slices.SortFunc(out, func(a, b Member) int { return strings.Compare(a.Name, b.Name) })
	return out
}

func toMember(n *memberlist.Node, state string) Member {
	return Member{Name: n.Name, Addr: n.Address(), Meta: slices.Clone(n.Meta), State: state}
}

func copyNode(n *memberlist.Node) memberlist.Node {
	cp := *n
	cp.Addr = slices.Clone(n.Addr)
	cp.Meta = slices.Clone(n.Meta)
	return cp
}

// sendTargetsLocked returns copies of the nodes to send invalidations and
// heartbeats to: the live peers, and those that failed less than
// GossipToTheDeadTime ago (as memberlist does for its own gossip): a node
// wrongly declared dead keeps receiving and so keeps detecting gaps.
func (c *Cluster) sendTargetsLocked(now time.Time) []memberlist.Node {
	out := make([]memberlist.Node, 0, len(c.peers))
	for _, p := range c.peers {
		if p.state == "alive" || (p.state == "dead" && now.Sub(p.since) < c.toTheDead) {
			out = append(out, p.node)
		}
	}
	return out
}

// alivePeersLocked returns copies of the live peers' nodes.
func (c *Cluster) alivePeersLocked() []memberlist.Node {
	out := make([]memberlist.Node, 0, len(c.peers))
	for _, p := range c.peers {
		if p.state == "alive" {
			out = append(out, p.node)
		}
	}
	return out
}

// Health reports how fresh this node's view is. FreshPeers counts every
// alive peer; see HealthSince.
func (c *Cluster) Health() Health { return c.HealthSince(time.Time{}) }

// SilentSince returns how many alive peers have sent this node nothing of
// their own (a batch or a heartbeat) since t. A peer sends those only to the
// members it counts as alive: one that stays silent may still take this node
// for dead (it restarted, or it was frozen), and would neither send it
// invalidations nor wait for its acknowledgement.
func (c *Cluster) SilentSince(t time.Time) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	silent := 0
	for _, p := range c.peers {
		if p.state == "alive" && p.spoke.Before(t) {
			silent++
		}
	}
	return silent
}

// Resync exchanges state (push/pull over TCP) with every alive peer now, as
// a join does, and returns how many answered out of how many were asked.
// After a stall the states merged meanwhile may be old (read from socket
// buffers); the answers to this call are current, so every invalidation the
// peers have published shows up as delivered or as a gap to repair.
func (c *Cluster) Resync(ctx context.Context) (answered, asked int, err error) {
	c.mu.Lock()
	var addrs []string
	for _, p := range c.peers {
		if p.state == "alive" {
			addrs = append(addrs, p.node.Address())
		}
	}
	c.mu.Unlock()
	if len(addrs) == 0 {
		return 0, 0, nil
	}
	answered, err = c.Join(ctx, addrs)
	return answered, len(addrs), err
}

// HealthSince is Health with FreshPeers counting the alive peers whose
// stream was heard at or after since.
func (c *Cluster) HealthSince(since time.Time) Health {
	c.mu.Lock()
	defer c.mu.Unlock()
	h := Health{Solo: len(c.cfg.Join) == 0 && !c.everPeer, Synced: c.synced}
	now := time.Now()
	for _, p := range c.peers {
		switch p.state {
		case "alive":
			h.AlivePeers++
			// Fresh: it named this incarnation in a heartbeat since then,
			// so it counts this process as a live member and waits for
			// its acks. A peer that only sends to us as to the recently
			// dead says nothing about what its writers wait for.
			if !p.spoke.Before(since) {
				h.FreshPeers++
			}
			if h.OldestHeard.IsZero() || p.lastHeard.Before(h.OldestHeard) {
				h.OldestHeard = p.lastHeard
			}
		case "dead":
			if now.Sub(p.since) <= c.cfg.FailedMemberRetention {
				h.ExpectedPeers++
			}
		}
	}
	h.ExpectedPeers += h.AlivePeers
	for _, s := range c.streams {
		h.PendingGaps += s.missing()
	}
	return h
}

// Stats returns the counters.
func (c *Cluster) Stats() Stats {
	return Stats{
		Published:          c.st.published.Load(),
		MessagesSent:       c.st.msgSent.Load(),
		MessagesReceived:   c.st.msgRecv.Load(),
		Received:           c.st.received.Load(),
		Duplicates:         c.st.dups.Load(),
		GapsDetected:       c.st.gaps.Load(),
		Repaired:           c.st.repaired.Load(),
		Unrepairable:       c.st.unrepairable.Load(),
		AcksReceived:       c.st.acks.Load(),
		HeartbeatsSent:     c.st.hbSent.Load(),
		HeartbeatsReceived: c.st.hbRecv.Load(),
		PushPulls:          c.st.pushPulls.Load(),
		Rejoins:            c.st.rejoins.Load(),
		Outgrown:           c.st.outgrown.Load(),
		DecodeErrors:       c.st.decodeErrs.Load(),
		Rejected:           c.st.rejected.Load(),
		StreamsRefused:     c.st.streamsRefused.Load(),
		StreamsCut:         c.st.streamsCut.Load(),
		MemberlistErrors:   c.lw.errors.Load(),
		QueueLen:           c.bq.NumQueued(),
	}
}

// Leave tells the cluster this node is leaving, waiting up to timeout for
// the message to go out. The node keeps running until Close.
func (c *Cluster) Leave(timeout time.Duration) error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return ErrClosed
	}
	c.left = true
	c.mu.Unlock()
	c.announceLeaving()
	if err := c.ml.Leave(timeout); err != nil {
		return fmt.Errorf("gossip: leave: %w", err)
	}
	return nil
}

// Close leaves the cluster (if Leave was not called), shuts memberlist down
// and waits for every goroutine the Cluster started. A TCP exchange in
// progress (repair, join) may hold it up to memberlist's TCP timeout.
// Close is idempotent.
func (c *Cluster) Close() error {
	c.closeOnce.Do(func() {
		c.mu.Lock()
		left := c.left
		c.left = true
		c.mu.Unlock()
		if !left {
			timeout := time.Second
			if c.cfg.Profile == Local {
				timeout = 250 * time.Millisecond
			}
			c.announceLeaving()
			_ = c.ml.Leave(timeout)
		}
		c.mu.Lock()
		c.closed = true
		for w := range c.waiters {
			w.finishLocked()
		}
		c.mu.Unlock()
		_ = c.ml.Shutdown()
		close(c.done)
		c.wg.Wait()
	})
	return nil
}

// announceLeaving tells every live peer that this node is leaving, before
// memberlist's own leave (see leavingMsg).
func (c *Cluster) announceLeaving() {
	c.mu.Lock()
	targets := c.alivePeersLocked()
	msg := (&leavingMsg{From: c.cfg.Name, Incarnation: c.inc}).encode()
	c.mu.Unlock()
	for range 2 { // UDP: twice, so one lost packet does not make a leave look like a failure
		for i := range targets {
			if c.ml.SendBestEffort(&targets[i], msg) == nil {
				c.st.msgSent.Add(1)
			}
		}
	}
}

// ---- background loops ----

func (c *Cluster) heartbeatLoop() {
	defer c.wg.Done()
	t := time.NewTicker(c.cfg.HeartbeatInterval)
	defer t.Stop()
	for {
		select {
		case <-c.done:
			return
		case <-t.C:
		case <-c.kick:
		}
		c.mu.Lock()
		targets := c.sendTargetsLocked(time.Now())
		msgs := make([][]byte, len(targets))
		for i := range targets {
			// Each recipient is told which of its incarnations this node
			// counts as live (see heartbeatMsg.To).
			c.hbSeq++
			hb := heartbeatMsg{From: c.cfg.Name, Incarnation: c.inc, LastSeq: c.seq, Seq: c.hbSeq}
			if p := c.peers[targets[i].Name]; p != nil && p.state == "alive" {
				hb.To = p.inc
			}
			msgs[i] = hb.encode()
		}
		c.pruneLocked(time.Now())
		c.mu.Unlock()
		for i := range targets {
			if c.ml.SendBestEffort(&targets[i], msgs[i]) == nil {
				c.st.hbSent.Add(1)
				c.st.msgSent.Add(1)
			}
		}
	}
}

// pruneLocked forgets peers that left or failed more than
// FailedMemberRetention ago, and the complete streams of origins no longer
// in the member table and not heard of for as long, so churn does not grow
// memory without bound. An
// origin seen again after that is a first contact.
func (c *Cluster) pruneLocked(now time.Time) {
	for name, p := range c.peers {
		if p.state != "alive" && now.Sub(p.since) > c.cfg.FailedMemberRetention {
			delete(c.peers, name)
		}
	}
	for k, s := range c.streams {
		if _, member := c.peers[k.origin]; !member && s.missing() == 0 &&
			now.Sub(s.touched) > c.cfg.FailedMemberRetention {
			delete(c.streams, k)
			if c.current[k.origin] == k.inc {
				delete(c.current, k.origin)
			}
		}
	}
}

func (c *Cluster) rejoinLoop() {
	defer c.wg.Done()
	if len(c.cfg.Join) == 0 {
		return
	}
	t := time.NewTicker(c.cfg.RejoinInterval)
	defer t.Stop()
	for {
		select {
		case <-c.done:
			return
		case <-t.C:
		}
		seeds := c.missingSeeds()
		if len(seeds) == 0 {
			continue
		}
		c.st.rejoins.Add(1)
		n, err := c.ml.Join(seeds)
		c.cfg.Logger.Debug("gossip: rejoin", "seeds", seeds, "joined", n, "err", err)
		if len(seeds) == len(c.cfg.Join) {
			c.noteJoin(n, err, seeds) // alone: every seed was tried
		}
	}
}

// missingSeeds returns the seeds that are not live members (all of them when
// this node is alone).
func (c *Cluster) missingSeeds() []string {
	c.mu.Lock()
	addrs := map[string]bool{c.self.Address(): true}
	alone := true
	for _, p := range c.peers {
		if p.state == "alive" {
			addrs[p.node.Address()] = true
			alone = false
		}
	}
	c.mu.Unlock()
	if alone {
		return c.cfg.Join
	}
	var out []string
	for _, s := range c.cfg.Join {
		host, port, err := net.SplitHostPort(s)
		if err != nil {
			continue
		}
		ips := []string{host}
		if net.ParseIP(host) == nil {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			ips, err = net.DefaultResolver.LookupHost(ctx, host)
			cancel()
			if err != nil {
				out = append(out, s)
				continue
			}
		}
		found := false
		for _, ip := range ips {
			if addrs[net.JoinHostPort(ip, port)] {
				found = true
				break
			}
		}
		if !found {
			out = append(out, s)
		}
	}
	return out
}

// joinWarnAfter failed join attempts in a row, noteJoin warns (then at most
// once a minute).
const joinWarnAfter = 5

// noteJoin records a join attempt of every seed. A node whose seeds answer
// TCP but refuse it (another key, another cluster name) used to log nothing:
// memberlist reports the failure as an error of the attempt only, and the
// seeds log the refusals on their side. After joinWarnAfter failures in a row
// it says so, with the likely causes.
func (c *Cluster) noteJoin(n int, err error, seeds []string) {
	c.joinMu.Lock()
	defer c.joinMu.Unlock()
	if n > 0 {
		c.joinFails = 0
		return
	}
	c.joinFails++
	if c.joinFails < joinWarnAfter || time.Since(c.joinWarned) < time.Minute {
		return
	}
	c.joinWarned = time.Now()
	keyed := "none (plaintext)"
	if c.keyring != nil {
		keyed = fmt.Sprintf("%d key(s)", len(c.keyring.GetKeys()))
	}
	c.cfg.Logger.Warn("gossip: cannot join any seed; likely causes: a different key on the seeds (all nodes need a common key: Keyring/SecretKey), a different cluster name (Cluster), or wrong seed addresses or a firewall",
		"attempts", c.joinFails, "seeds", seeds, "cluster", c.cfg.Cluster, "keys", keyed, "last_err", err)
}
