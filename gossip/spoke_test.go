package gossip

import (
	"testing"
	"time"
)

// bareCluster is a Cluster with only what receiveHeartbeat and SilentSince
// use: no memberlist, no sockets.
func bareCluster(name string, inc uint64, peers ...string) *Cluster {
	now := time.Now()
	c := &Cluster{cfg: Config{Name: name}, inc: inc, kick: make(chan struct{}, 1), started: now, wallAtStart: now.UnixNano(),
		streams: map[streamKey]*stream{}, current: map[string]uint64{}, peers: map[string]*peer{}}
	for _, p := range peers {
		c.peers[p] = &peer{state: "alive"}
	}
	return c
}

// TestHeartbeatCountsOnlyWhenItNamesThisIncarnation: a peer has spoken to
// this node (it counts this process as a live member, and will wait for its
// acks) only once a heartbeat names this node's incarnation. A heartbeat with
// To 0 (the peer counts us dead: it still sends to the recently dead), or
// naming a previous incarnation (we restarted and it has not heard of it
// yet), does not count; nor does a batch. Catches: a restarted node trusting
// its cache while a writer does not wait for it (issue 11).
func TestHeartbeatCountsOnlyWhenItNamesThisIncarnation(t *testing.T) {
	const us, prev = 2000, 1000
	c := bareCluster("b", us, "a")
	mark := time.Now().Add(-time.Millisecond)
	for i, to := range []uint64{0, prev, us + 1} {
		c.receiveHeartbeat(&heartbeatMsg{From: "a", Incarnation: 7, LastSeq: 0, To: to, Seq: uint64(i + 1)})
		if got := c.SilentSince(mark); got != 1 {
			t.Fatalf("heartbeat naming incarnation %d (ours is %d): SilentSince = %d, want 1", to, us, got)
		}
	}
	if c.peers["a"].lastHeard.Before(mark) {
		t.Error("a heartbeat that does not name us still says its sender is alive: lastHeard not updated")
	}
	c.receiveHeartbeat(&heartbeatMsg{From: "a", Incarnation: 7, To: us, Seq: 4})
	if got := c.SilentSince(mark); got != 0 {
		t.Fatalf("heartbeat naming our incarnation: SilentSince = %d, want 0", got)
	}
}

// TestHeartbeatNamesWhatItKnows: a node tells each peer the incarnation it
// heard from that peer, and kicks a heartbeat out at once when it hears a
// new one (a restarted peer is waiting for it to trust its cache).
func TestHeartbeatNamesWhatItKnows(t *testing.T) {
	c := bareCluster("a", 5, "b")
	c.receiveHeartbeat(&heartbeatMsg{From: "b", Incarnation: 1000})
	if got := c.peers["b"].inc; got != 1000 {
		t.Fatalf("peer incarnation = %d after its heartbeat, want 1000", got)
	}
	select {
	case <-c.kick:
	default:
		t.Fatal("no heartbeat kicked out on hearing a new incarnation")
	}
	c.receiveHeartbeat(&heartbeatMsg{From: "b", Incarnation: 999}) // a late packet of an older one
	if got := c.peers["b"].inc; got != 1000 {
		t.Errorf("peer incarnation went back to %d on a late packet", got)
	}
	select {
	case <-c.kick:
		t.Error("a heartbeat kicked out for an old incarnation")
	default:
	}
}

func TestHeartbeatWireCarriesTo(t *testing.T) {
	m := &heartbeatMsg{From: "n1", Incarnation: 1 << 60, LastSeq: 42, To: 1<<60 + 7, Seq: 9}
	got, err := decodeMessage(m.encode())
	if err != nil {
		t.Fatal(err)
	}
	if hb, ok := got.(*heartbeatMsg); !ok || *hb != *m {
		t.Fatalf("decoded %#v, want %#v", got, m)
	}
}
