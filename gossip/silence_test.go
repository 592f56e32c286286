package gossip

import (
	"github.com/hashicorp/memberlist"
	"log/slog"
	"math"
	"testing"
	"time"
)

// silenceCluster is a bareCluster that can also take batches and leaves
// (a recent log, a dispatcher whose queue the test reads).
func silenceCluster(name string, inc uint64, peers ...string) *Cluster {
	c := bareCluster(name, inc, peers...)
	c.log = newRecentLog(1024)
	c.waiters = map[*ackWaiter]struct{}{}
	c.disp.init()
	c.cfg.Logger = slog.New(slog.DiscardHandler)
	c.bq = &memberlist.TransmitLimitedQueue{NumNodes: func() int { return 2 }, RetransmitMult: 1}
	c.lw = &logWriter{l: c.cfg.Logger}
	return c
}

func queuedAcks(c *Cluster) int {
	c.disp.mu.Lock()
	defer c.disp.mu.Unlock()
	n := 0
	for _, e := range c.disp.queue {
		if e.ack != nil {
			n++
		}
	}
	return n
}

func batchFrom(origin string, inc, seq uint64, ack bool) []byte {
	m := &batchMsg{Log: originLog{Origin: origin, Incarnation: inc,
		Entries: []Invalidation{{Group: "g", Kind: KindKey, Key: "k", Version: seq, Origin: origin, Seq: seq}}}}
	if ack {
		m.Flags = flagAck
	}
	return m.encode()
}

// TestForgedIncarnationCannotSilence replays issue 12's forged heartbeat
// (27 bytes, incarnation 2^64-1, "from" a live member) and checks that the
// member's next batch is still applied and acknowledged. Without the
// plausibility check the forged incarnation becomes the member's current one
// and every real batch is dropped as old (and, without the ack check, still
// acknowledged).
func TestForgedIncarnationCannotSilence(t *testing.T) {
	real := uint64(time.Now().UnixNano())
	c := silenceCluster("b", real, "node-1")
	forged := (&heartbeatMsg{From: "node-1", Incarnation: math.MaxUint64, LastSeq: 5, To: 0, Seq: 1}).encode()
	c.handleMessage(forged)
	if got := c.current["node-1"]; got == math.MaxUint64 {
		t.Fatal("a heartbeat claiming incarnation 2^64-1 became the member's current incarnation")
	}
	if c.Stats().Rejected == 0 {
		t.Error("the forged heartbeat was not counted in Stats.Rejected")
	}
	// The same through a push/pull state vector (how it spread in issue 12).
	c.mergeState((&stateMsg{From: "x", Vector: []vecEntry{{Origin: "node-1", Incarnation: math.MaxUint64 - 1, High: 9}}}).encode())
	if got := c.current["node-1"]; got > real+uint64(maxIncarnationAhead) {
		t.Fatalf("a state vector entry with incarnation %d was taken", got)
	}
	c.handleMessage(batchFrom("node-1", real, 1, true))
	if got := c.Stats().Received; got != 1 {
		t.Fatalf("the member's real batch after the forgery: %d invalidations received, want 1", got)
	}
	if got := queuedAcks(c); got != 1 {
		t.Fatalf("acks queued = %d, want 1", got)
	}
}

// TestDroppedBatchNotAcknowledged: a batch of an incarnation this node no
// longer tracks (a newer one of the origin is current) is dropped, and must
// not be acknowledged: the ack would tell the origin's AckAll write that this
// node applied an invalidation it never saw.
func TestDroppedBatchNotAcknowledged(t *testing.T) {
	c := silenceCluster("b", 100, "a")
	now := uint64(time.Now().UnixNano())
	c.handleMessage(batchFrom("a", now, 1, true)) // current = now
	if got := queuedAcks(c); got != 1 {
		t.Fatalf("acks queued for a taken batch = %d, want 1", got)
	}
	c.handleMessage(batchFrom("a", now-1000, 1, true)) // an older incarnation, not tracked
	if got := queuedAcks(c); got != 1 {
		t.Fatalf("acks queued after a dropped batch = %d, want still 1", got)
	}
	// A batch with an implausible incarnation: dropped, not acknowledged.
	c.handleMessage(batchFrom("a", math.MaxUint64, 1, true))
	if got := queuedAcks(c); got != 1 {
		t.Fatalf("acks queued after an implausible batch = %d, want still 1", got)
	}
}

// TestReplayedHeartbeatDoesNotRefresh: the same heartbeat received twice (a
// capture sent again; encryption does not stop that) refreshes its sender's
// freshness once only.
func TestReplayedHeartbeatDoesNotRefresh(t *testing.T) {
	const us = 2000
	c := silenceCluster("b", us, "a")
	hb := (&heartbeatMsg{From: "a", Incarnation: 7, To: us, Seq: 3}).encode()
	c.handleMessage(hb)
	first := c.peers["a"].spoke
	if first.IsZero() {
		t.Fatal("the first heartbeat did not count")
	}
	mark := time.Now()
	for time.Now().Equal(mark) {
	}
	c.handleMessage(hb)
	if c.peers["a"].spoke != first || c.peers["a"].lastHeard != first {
		t.Fatal("a replayed heartbeat refreshed its sender's freshness")
	}
	c.handleMessage((&heartbeatMsg{From: "a", Incarnation: 7, To: us, Seq: 4}).encode())
	if !c.peers["a"].spoke.After(first) {
		t.Fatal("the next heartbeat did not count")
	}
	// A replayed batch (all duplicates) does not refresh it either.
	c.handleMessage(batchFrom("a", 7, 1, false))
	heard := c.peers["a"].lastHeard
	c.handleMessage(batchFrom("a", 7, 1, false))
	if c.peers["a"].lastHeard != heard {
		t.Fatal("a replayed batch refreshed its origin's freshness")
	}
}

// TestLeaveChecksIncarnation: a leave naming an incarnation other than the
// one heard from the member (a replay of a previous life's leave, or a
// forgery) does not make its later failure count as a leave, so AckAll
// writes keep waiting for it.
func TestLeaveChecksIncarnation(t *testing.T) {
	c := silenceCluster("b", 100, "a")
	c.handleMessage((&heartbeatMsg{From: "a", Incarnation: 50, Seq: 1}).encode())
	c.handleMessage((&leavingMsg{From: "a", Incarnation: 49}).encode())
	if c.peers["a"].leftGracefully() {
		t.Fatal("a leave of another incarnation was taken")
	}
	c.handleMessage((&leavingMsg{From: "a", Incarnation: math.MaxUint64}).encode())
	if c.peers["a"].leftGracefully() {
		t.Fatal("a leave with an implausible incarnation was taken")
	}
	c.handleMessage((&leavingMsg{From: "a", Incarnation: 50}).encode())
	if !c.peers["a"].leftGracefully() {
		t.Fatal("the member's own leave was not taken")
	}
}
