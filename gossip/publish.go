package gossip

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/hashicorp/memberlist"
)

// Publish assigns Origin, Seq and SentAt to copies of invs, records them for
// repair and anti-entropy, sends them at once to every alive member (one UDP
// packet per batch that fits memberlist's budget, TCP for a lone oversize
// invalidation) and queues them for memberlist's gossip retransmission. It
// returns ErrClosed after Close.
func (c *Cluster) Publish(ctx context.Context, invs []Invalidation) error {
	_, err := c.publish(ctx, invs, false)
	return err
}

// PublishAcked is Publish, then waits until every member alive at the call
// acknowledged (receivers acknowledge after their Handler took the
// invalidations), resending to the missing ones every 20ms. Members that
// leave gracefully meanwhile are no longer waited for. If ctx ends first it
// returns an *AckError naming the members that did not acknowledge.
func (c *Cluster) PublishAcked(ctx context.Context, invs []Invalidation) error {
	_, err := c.PublishAckedBy(ctx, invs)
	return err
}

// PublishAckedBy is PublishAcked, and also returns the members it waited
// for (sorted): those alive here when it published.
func (c *Cluster) PublishAckedBy(ctx context.Context, invs []Invalidation) (waited []string, err error) {
	w, err := c.publish(ctx, invs, true)
	if err != nil || w == nil {
		return nil, err
	}
	waited = w.members
	err = c.awaitAcks(ctx, w)
	return waited, err
}

func (c *Cluster) awaitAcks(ctx context.Context, w *ackWaiter) error {
	t := time.NewTicker(ackResend)
	defer t.Stop()
	for {
		select {
		case <-w.done:
			c.mu.Lock()
			closed := c.closed && len(w.pending) > 0
			delete(c.waiters, w)
			c.mu.Unlock()
			if closed {
				return ErrClosed
			}
			return nil
		case <-ctx.Done():
			c.mu.Lock()
			missing := make([]string, 0, len(w.pending))
			for name := range w.pending {
				missing = append(missing, name)
			}
			delete(c.waiters, w)
			c.mu.Unlock()
			if len(missing) == 0 {
				return nil
			}
			slices.Sort(missing)
			return &AckError{Missing: missing, Err: ctx.Err()}
		case <-t.C:
		}
		// Resend what each missing member has not acknowledged.
		type job struct {
			node memberlist.Node
			b    []encodedBatch
		}
		var jobs []job
		c.mu.Lock()
		for name, idx := range w.pending {
			p := c.peers[name]
			if p == nil || p.state != "alive" {
				continue
			}
			j := job{node: p.node}
			for i := range idx {
				j.b = append(j.b, w.batches[i])
			}
			jobs = append(jobs, j)
		}
		c.mu.Unlock()
		for i := range jobs {
			c.sendBatches([]memberlist.Node{jobs[i].node}, jobs[i].b)
		}
	}
}

// ackWaiter tracks one PublishAcked call. Cluster.mu guards it.
type ackWaiter struct {
	members []string // waited for, sorted (pending only shrinks)
	inc     uint64
	batches []encodedBatch
	pending map[string]map[int]struct{} // member -> batch indexes not yet acknowledged
	done    chan struct{}
	closed  bool
}

func (w *ackWaiter) dropLocked(name string) {
	delete(w.pending, name)
	if len(w.pending) == 0 {
		w.finishLocked()
	}
}

func (w *ackWaiter) finishLocked() {
	if !w.closed {
		w.closed = true
		close(w.done)
	}
}

func validateInvalidation(i int, inv *Invalidation) error {
	switch {
	case inv.Kind < KindKey || inv.Kind > KindProgress:
		return fmt.Errorf("gossip: invalidation %d: unknown Kind %d", i, inv.Kind)
	case len(inv.Group) > MaxGroupLen:
		return fmt.Errorf("gossip: invalidation %d: Group longer than %d bytes", i, MaxGroupLen)
	case len(inv.Key) > MaxKeyLen:
		return fmt.Errorf("gossip: invalidation %d: Key longer than %d bytes", i, MaxKeyLen)
	}
	return nil
}

func (c *Cluster) publish(ctx context.Context, invs []Invalidation, acked bool) (*ackWaiter, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if len(invs) == 0 {
		return nil, nil
	}
	es := make([]Invalidation, len(invs))
	for i := range invs {
		if err := validateInvalidation(i, &invs[i]); err != nil {
			return nil, err
		}
		es[i] = Invalidation{Group: invs[i].Group, Kind: invs[i].Kind, Key: invs[i].Key, Version: invs[i].Version}
	}
	var flags byte
	if acked {
		flags = flagAck
	}
	now := time.Now().UnixNano()

	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil, ErrClosed
	}
	for i := range es {
		c.seq++
		es[i].Origin, es[i].Seq, es[i].SentAt = c.cfg.Name, c.seq, now
		c.log.add(c.inc, es[i])
	}
	targets := c.sendTargetsLocked(time.Now())
	inc := c.inc
	batches := encodeBatches(c.cfg.Name, inc, flags, es)
	var w *ackWaiter
	if acked {
		w = &ackWaiter{inc: c.inc, batches: batches, pending: map[string]map[int]struct{}{}, done: make(chan struct{})}
		for _, n := range c.alivePeersLocked() {
			idx := make(map[int]struct{}, len(batches))
			for i := range batches {
				idx[i] = struct{}{}
			}
			w.pending[n.Name] = idx
			w.members = append(w.members, n.Name)
		}
		slices.Sort(w.members)
		if len(w.pending) == 0 {
			w.finishLocked()
		}
		c.waiters[w] = struct{}{}
	}
	c.mu.Unlock()
	c.st.published.Add(uint64(len(es)))

	c.sendBatches(targets, batches)
	// Gossip retransmission: one message per invalidation, so a newer one
	// of the same (group, kind, key) replaces an older one still queued.
	// Whatever the queue drops is repaired from the seq gaps.
	for _, b := range encodeBatches(c.cfg.Name, inc, 0, es) {
		if b.oversize {
			continue
		}
		if b.first == b.last {
			e := &es[b.first-es[0].Seq]
			c.bq.QueueBroadcast(&broadcast{name: e.Group + "\x00" + strconv.Itoa(int(e.Kind)) + "\x00" + e.Key, msg: b.data})
		}
	}
	if c.bq.NumQueued() > maxQueued {
		c.bq.Prune(maxQueued)
	}
	return w, nil
}

// sendBatches sends every batch to every target: UDP for batches within the
// budget, TCP (on a goroutine) for oversize ones.
func (c *Cluster) sendBatches(targets []memberlist.Node, batches []encodedBatch) {
	for i := range targets {
		n := &targets[i]
		for _, b := range batches {
			if !b.oversize {
				if err := c.ml.SendBestEffort(n, b.data); err == nil {
					c.st.msgSent.Add(1)
				}
				continue
			}
			node, data := *n, b.data
			c.spawn(func() {
				if err := c.ml.SendReliable(&node, data); err == nil {
					c.st.msgSent.Add(1)
				}
			})
		}
	}
}

func (c *Cluster) receiveAck(m *ackMsg) {
	c.st.acks.Add(1)
	c.mu.Lock()
	defer c.mu.Unlock()
	for w := range c.waiters {
		if w.inc != m.Incarnation {
			continue
		}
		idx := w.pending[m.From]
		if idx == nil {
			continue
		}
		for i := range idx {
			if w.batches[i].first == m.First && w.batches[i].last == m.Last {
				delete(idx, i)
			}
		}
		if len(idx) == 0 {
			w.dropLocked(m.From)
		}
	}
}

// broadcast is one queued gossip message, named by (group, kind, key).
type broadcast struct {
	name string
	msg  []byte
}

var _ memberlist.NamedBroadcast = (*broadcast)(nil)

func (b *broadcast) Invalidates(other memberlist.Broadcast) bool {
	o, ok := other.(memberlist.NamedBroadcast)
	return ok && o.Name() == b.name
}
func (b *broadcast) Message() []byte { return b.msg }
func (b *broadcast) Finished()       {}
func (b *broadcast) Name() string    { return b.name }
