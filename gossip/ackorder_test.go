package gossip

import (
	"testing"
	"testing/synctest"
	"time"

	"github.com/nearcache/nearcache/gossip/gossiptest"
)

// blockingHandler holds the dispatch loop inside its first delivery, so a
// test can look at what is queued behind it.
type blockingHandler struct {
	entered chan struct{}
	release chan struct{}
}

func (h *blockingHandler) Invalidations([]Invalidation) {
	select {
	case h.entered <- struct{}{}:
		<-h.release
	default:
	}
}
func (h *blockingHandler) Unrepairable(string)     {}
func (h *blockingHandler) MembersChanged([]Member) {}

// TestDeliveryQueuedBeforeAck: when receiveLog accepts invalidations, their
// delivery is queued before it returns (under the lock that marks them seen),
// so an ack that another receipt of the same seqs queues afterwards can only
// follow it: an origin never hears "applied" before the handler applied it
// (G7). Without this, internal/check's campaign saw an AckAll invalidation
// return while an acking node still served the old version.
func TestDeliveryQueuedBeforeAck(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		t.Cleanup(func() { time.Sleep(10 * time.Second); synctest.Wait() })
		h := &blockingHandler{entered: make(chan struct{}, 1), release: make(chan struct{})}
		nw := gossiptest.New(51)
		tr, err := nw.Transport(fakeAddr(0))
		if err != nil {
			t.Fatal(err)
		}
		cfg := DefaultLocalConfig()
		cfg.Name, cfg.Transport, cfg.Handler = "n00", tr, h
		c, err := Start(t.Context(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		defer close(h.release)

		c.disp.deliver([]Invalidation{{Group: "g", Kind: KindKey, Key: "busy", Version: 1}})
		<-h.entered // the dispatch loop is held: the queue only grows now

		l := originLog{Origin: "o1", Incarnation: 1, Entries: []Invalidation{{Group: "g", Kind: KindKey, Key: "k", Version: 7, Origin: "o1", Seq: 1}}}
		if fresh := c.receiveLog(&l, false); len(fresh) != 1 {
			t.Fatalf("receiveLog accepted %d invalidations, want 1", len(fresh))
		}
		// A second receipt of the same seq (the UDP batch asking for an ack)
		// finds it seen and queues the ack.
		if again := c.receiveLog(&l, true); len(again) != 0 {
			t.Fatalf("a second receipt was fresh again: %v", again)
		}
		c.disp.ack("o1", (&ackMsg{From: "n00", Incarnation: 1, First: 1, Last: 1}).encode())

		c.disp.mu.Lock()
		q := append([]event(nil), c.disp.queue...)
		c.disp.mu.Unlock()
		if len(q) != 2 || q[0].invs == nil || q[0].invs[0].Key != "k" || q[1].ack == nil {
			t.Fatalf("dispatch queue = %+v; want the delivery of k, then the ack", q)
		}
	})
}
