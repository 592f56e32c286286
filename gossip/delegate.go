package gossip

import (
	"bytes"
	"time"

	"github.com/hashicorp/memberlist"
)

// delegate implements memberlist.Delegate and memberlist.EventDelegate.
// Nothing here blocks: TCP sends go to goroutines, deliveries to the
// dispatcher.
type delegate struct{ c *Cluster }

var (
	_ memberlist.Delegate      = (*delegate)(nil)
	_ memberlist.EventDelegate = (*delegate)(nil)
)

func (d *delegate) NodeMeta(limit int) []byte {
	if len(d.c.cfg.Meta) > limit {
		return nil
	}
	return d.c.cfg.Meta
}

func (d *delegate) NotifyMsg(b []byte) { d.c.handleMessage(bytes.Clone(b)) }

func (d *delegate) GetBroadcasts(overhead, limit int) [][]byte {
	return d.c.bq.GetBroadcasts(overhead, limit)
}

func (d *delegate) LocalState(join bool) []byte { return d.c.localState() }

func (d *delegate) MergeRemoteState(buf []byte, join bool) { d.c.mergeState(bytes.Clone(buf)) }

func (d *delegate) NotifyJoin(n *memberlist.Node)   { d.c.memberEvent(n, true) }
func (d *delegate) NotifyUpdate(n *memberlist.Node) { d.c.memberEvent(n, true) }
func (d *delegate) NotifyLeave(n *memberlist.Node)  { d.c.memberEvent(n, false) }

// memberEvent runs with memberlist's node lock held: it must not call
// memberlist.
func (c *Cluster) memberEvent(n *memberlist.Node, alive bool) {
	now := time.Now()
	c.mu.Lock()
	if n.Name == c.cfg.Name {
		if alive {
			c.self = copyNode(n)
		}
		c.mu.Unlock()
		return
	}
	p := c.peers[n.Name]
	if p == nil {
		p = &peer{}
		c.peers[n.Name] = p
	}
	p.node = copyNode(n)
	switch {
	case alive && p.state != "alive" && p.state != "":
		p.state, p.since, p.lastHeard, p.leaving = "alive", now, now, 0 // back after a leave or failure
		c.everPeer = true
	case alive && p.state == "":
		p.state, p.since, p.lastHeard = "alive", now, now // first seen (its leave may already be announced)
		c.everPeer = true
	case !alive:
		p.state, p.since = "dead", now
		if p.leftGracefully() || n.State == memberlist.StateLeft {
			p.state = "left"
			for w := range c.waiters {
				w.dropLocked(n.Name)
			}
		}
	}
	alivePeers, failed := 0, 0
	for _, p := range c.peers {
		switch {
		case p.state == "alive":
			alivePeers++
		case p.state == "dead" && now.Sub(p.since) <= c.cfg.FailedMemberRetention:
			failed++
		}
	}
	// Alone after a failure, this node may be the minority side of a
	// partition: it must catch up again before it trusts. Alone because every
	// peer left gracefully, it heard all they published (they announced the
	// leave, and a leaver publishes nothing after it), so it stays caught up:
	// the survivor of a 2-node rolling restart keeps serving (issue 11).
	if alivePeers == 0 && failed > 0 {
		c.synced = false
	}
	c.numNodes.Store(int64(alivePeers + 1))
	c.mu.Unlock()
	c.disp.membersChanged()
	if alive {
		// Tell the (new) peer where our stream is now, not in up to
		// HeartbeatInterval: it anchors its tracking of us.
		select {
		case c.kick <- struct{}{}:
		default:
		}
	}
}

// handleMessage handles one user message (packet or stream). b is ours.
func (c *Cluster) handleMessage(b []byte) {
	c.st.msgRecv.Add(1)
	m, err := decodeMessage(b)
	if err != nil {
		c.st.decodeErrs.Add(1)
		c.cfg.Logger.Debug("gossip: dropping malformed message", "err", err)
		return
	}
	switch m := m.(type) {
	case *batchMsg:
		_, taken := c.receiveLogTaken(&m.Log, true) // queues the delivery itself
		// Acknowledge only what this node applied (now or before): an ack
		// for a batch it dropped (an incarnation it does not track, one
		// refused as implausible) would let the origin's AckAll write return
		// while this node keeps serving the old value (issue 12).
		if taken && m.Flags&flagAck != 0 && len(m.Log.Entries) > 0 {
			ack := &ackMsg{From: c.cfg.Name, Incarnation: m.Log.Incarnation,
				First: m.Log.Entries[0].Seq, Last: m.Log.Entries[len(m.Log.Entries)-1].Seq}
			c.disp.ack(m.Log.Origin, ack.encode())
		}
	case *heartbeatMsg:
		c.receiveHeartbeat(m)
	case *leavingMsg:
		c.receiveLeaving(m, b)
	case *ackMsg:
		c.receiveAck(m)
	case *repairReqMsg:
		c.answerRepair(m)
	case *repairRespMsg:
		c.receiveRepair(m)
	default:
		c.st.decodeErrs.Add(1)
	}
}

// streamForLocked returns the stream of (origin, inc), creating it on first
// contact or for a new incarnation of a known origin. It returns nil for an
// older incarnation no longer tracked.
//
// Where tracking starts: a new incarnation of a known origin, or an origin
// that started after this node (inc is its start time; clocks are assumed
// roughly in sync), is tracked from seq 1: everything it published may
// concern what this node cached. An origin that started before this node
// is tracked from first contact (base; nothing is owed from before). First
// contact is normally the join's state exchange or a heartbeat, which each
// node sends a new peer at once.
func (c *Cluster) streamForLocked(origin string, inc, base uint64) *stream {
	s := c.findStreamLocked(origin, inc, base)
	if s != nil {
		s.touched = time.Now()
	}
	return s
}

func (c *Cluster) findStreamLocked(origin string, inc, base uint64) *stream {
	k := streamKey{origin, inc}
	cur, ok := c.current[origin]
	switch {
	case !ok:
		c.current[origin] = inc
		if inc > c.inc {
			base = 0
		}
		s := newStream(base)
		c.streams[k] = s
		return s
	case inc > cur:
		c.current[origin] = inc
		if old := c.streams[streamKey{origin, cur}]; old != nil && old.missing() == 0 {
			delete(c.streams, streamKey{origin, cur})
		}
		s := newStream(0)
		c.streams[k] = s
		return s
	case inc == cur:
		s := c.streams[k]
		if s == nil {
			s = newStream(base)
			c.streams[k] = s
		}
		return s
	}
	return c.streams[k]
}

// receiveLog records l's entries and returns the ones seen for the first
// time. fromOrigin: l came from its origin (freshness).
func (c *Cluster) receiveLog(l *originLog, fromOrigin bool) []Invalidation {
	fresh, _ := c.receiveLogTaken(l, fromOrigin)
	return fresh
}

// receiveLogTaken is receiveLog that also reports whether every entry of l
// is now applied here (fresh, or seen before in a stream this node tracks):
// only then may l be acknowledged.
func (c *Cluster) receiveLogTaken(l *originLog, fromOrigin bool) (fresh []Invalidation, taken bool) {
	if l.Origin == c.cfg.Name || len(l.Entries) == 0 {
		return nil, false
	}
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.plausible(l.Incarnation) {
		c.rejectLocked("batch", l.Origin, l.Incarnation)
		return nil, false
	}
	s := c.streamForLocked(l.Origin, l.Incarnation, l.Entries[0].Seq-1)
	if s == nil {
		c.st.dups.Add(uint64(len(l.Entries)))
		return nil, false
	}
	defer func() {
		// A batch is sent to the recently dead too: it says the origin is
		// alive, not that it counts this node as a member. Only one that
		// brought something new says so: a replayed batch is all
		// duplicates, and must not keep a dead origin looking fresh.
		if fromOrigin && len(fresh) > 0 {
			if p := c.peers[l.Origin]; p != nil && p.state == "alive" {
				p.lastHeard = now
				c.noteIncLocked(p, l.Incarnation)
			}
		}
	}()
	taken = true
	for _, e := range l.Entries {
		ok, repaired, gaps := s.receive(e.Seq)
		if !ok {
			c.st.dups.Add(1)
			continue
		}
		if repaired {
			c.st.repaired.Add(1)
		}
		c.st.gaps.Add(gaps)
		c.log.add(l.Incarnation, e)
		fresh = append(fresh, e)
	}
	c.st.received.Add(uint64(len(fresh)))
	// Queue the delivery before unlocking c.mu: an ack for these seqs, queued
	// by another receipt of them that finds them already seen (a push/pull or
	// repair over TCP racing the UDP batch that asked for the ack), must
	// follow it in the dispatcher's FIFO, or the origin could hear "applied"
	// before the handler applied it (found by internal/check: an AckAll
	// invalidation returned and a read 2µs later on an acking node was stale).
	// Lock order c.mu -> disp.mu; the dispatch loop never holds disp.mu while
	// taking c.mu.
	c.disp.deliver(fresh)
	return fresh, taken
}

func (c *Cluster) receiveHeartbeat(m *heartbeatMsg) {
	c.st.hbRecv.Add(1)
	if m.From == c.cfg.Name {
		return
	}
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.plausible(m.Incarnation) {
		c.rejectLocked("heartbeat", m.From, m.Incarnation)
		return
	}
	if p := c.peers[m.From]; p != nil && p.state == "alive" {
		// News of its sender only if newer than the last heartbeat taken
		// from it: a replayed (or late) one says nothing about now.
		switch {
		case m.Incarnation < p.hbInc, m.Incarnation == p.hbInc && m.Seq <= p.hbSeq:
			c.st.rejected.Add(1)
			return
		}
		p.hbInc, p.hbSeq = m.Incarnation, m.Seq
		p.lastHeard = now
		if m.To == c.inc {
			p.spoke = now // it counts this process as a live member: it will wait for our acks
		}
		c.noteIncLocked(p, m.Incarnation)
	}
	if s := c.streamForLocked(m.From, m.Incarnation, m.LastSeq); s != nil {
		c.st.gaps.Add(s.note(m.LastSeq))
	}
}

// noteIncLocked records inc as p's incarnation if it is newer than the one
// known. A peer seen at a new incarnation (it restarted) is sent a heartbeat
// at once, naming it: it needs one from every live peer before it trusts its
// cache.
func (c *Cluster) noteIncLocked(p *peer, inc uint64) {
	if inc <= p.inc || !c.plausible(inc) {
		return
	}
	p.inc = inc
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

// receiveLeaving notes that a peer announced its leave: when memberlist
// reports it gone (before or after this message), it left and does not count
// as failed in Health. The first receipt is passed on through the gossip
// queue, so members the leaver did not know yet (it joined moments ago) hear
// it too.
func (c *Cluster) receiveLeaving(m *leavingMsg, raw []byte) {
	if m.From == c.cfg.Name {
		return
	}
	c.mu.Lock()
	if !c.plausible(m.Incarnation) || m.Incarnation == 0 {
		c.rejectLocked("leave", m.From, m.Incarnation)
		c.mu.Unlock()
		return
	}
	p := c.peers[m.From]
	if p == nil {
		p = &peer{}
		c.peers[m.From] = p
	}
	if p.inc != 0 && m.Incarnation != p.inc {
		// The leave of another life of that member (replayed), or forged:
		// it must not make a failure of the live one look like a leave.
		c.rejectLocked("leave of another incarnation", m.From, m.Incarnation)
		c.mu.Unlock()
		return
	}
	first := p.leaving != m.Incarnation && p.state != "left"
	p.leaving = m.Incarnation
	if p.state == "dead" && p.leftGracefully() {
		p.state = "left"
		for w := range c.waiters {
			w.dropLocked(m.From)
		}
	}
	c.mu.Unlock()
	if first {
		c.bq.QueueBroadcast(&broadcast{name: "\x00leaving\x00" + m.From, msg: raw})
	}
}

// maxIncarnationAhead is how far ahead of this node's wall clock another
// member's incarnation may be. Incarnations are start times in unix nanos
// (or one past a remembered one, see outgrowLocked), so a real one is ahead
// of this clock by no more than the clock difference between the two hosts:
// milliseconds under NTP, seconds for a VM resumed with a stale clock. Ten
// minutes is far more than that, and small enough that a forged incarnation
// (2^64-1 in issue 12) cannot be used: one past it is out of reach for the
// real member, which could never outgrow it and whose every batch would then
// be dropped as old. A forgery inside the window is outgrown by the member
// at its next push/pull (it hears of it in a state vector), at the cost of
// republishing its recent log; its batches are not acknowledged meanwhile.
// A node whose clock is more than ten minutes behind its peers' refuses their
// messages and says so in a WARN.
const maxIncarnationAhead = 10 * time.Minute

// plausible reports whether inc is not implausibly far in the future. The
// local clock is the wall clock read at Start plus the monotonic time since,
// so a step of this host's clock after Start moves nothing.
func (c *Cluster) plausible(inc uint64) bool {
	now := c.wallAtStart + int64(time.Since(c.started))
	return now <= 0 || inc <= uint64(now)+uint64(maxIncarnationAhead)
}

// rejectLocked counts a refused message (or part of one) and logs it at most
// once per rejectLogEvery, with how many were refused since.
func (c *Cluster) rejectLocked(what, origin string, inc uint64) {
	n := c.st.rejected.Add(1)
	now := time.Now()
	if now.Sub(c.rejectLogged) < rejectLogEvery {
		return
	}
	c.cfg.Logger.Warn("gossip: refused a message (an incarnation implausibly far ahead of this clock, or a leave of another incarnation); a forgery, or this host's clock is far behind",
		"what", what, "origin", origin, "incarnation", inc, "local_clock", c.wallAtStart+int64(time.Since(c.started)),
		"refused_since_last_log", n-c.rejectLoggedAt)
	c.rejectLogged, c.rejectLoggedAt = now, n
}

const rejectLogEvery = 10 * time.Second
