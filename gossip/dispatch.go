package gossip

import (
	"sync"

	"github.com/hashicorp/memberlist"
)

type memberlistNode = memberlist.Node

// dispatcher serialises Handler calls (and the acks that follow deliveries)
// on one goroutine, so memberlist's callbacks never block on the Handler.
type dispatcher struct {
	wake chan struct{}

	// mu guards the fields below.
	mu           sync.Mutex
	queue        []event
	membersDirty bool
}

type event struct {
	invs         []Invalidation
	unrepairable string
	ackTo        string
	ack          []byte
}

func (d *dispatcher) init() { d.wake = make(chan struct{}, 1) }

func (d *dispatcher) push(e event) {
	d.mu.Lock()
	d.queue = append(d.queue, e)
	d.mu.Unlock()
	d.signal()
}

func (d *dispatcher) signal() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

func (d *dispatcher) deliver(invs []Invalidation) {
	if len(invs) > 0 {
		d.push(event{invs: invs})
	}
}

func (d *dispatcher) unrepairable(origin string) { d.push(event{unrepairable: origin}) }

func (d *dispatcher) ack(to string, msg []byte) { d.push(event{ackTo: to, ack: msg}) }

func (d *dispatcher) membersChanged() {
	d.mu.Lock()
	d.membersDirty = true
	d.mu.Unlock()
	d.signal()
}

func (c *Cluster) dispatchLoop() {
	defer c.wg.Done()
	h := c.cfg.Handler
	for {
		select {
		case <-c.done:
			return
		case <-c.disp.wake:
		}
		c.disp.mu.Lock()
		q, dirty := c.disp.queue, c.disp.membersDirty
		c.disp.queue, c.disp.membersDirty = nil, false
		c.disp.mu.Unlock()
		if dirty {
			h.MembersChanged(c.Members())
		}
		for _, e := range q {
			switch {
			case e.invs != nil:
				h.Invalidations(e.invs)
			case e.unrepairable != "":
				h.Unrepairable(e.unrepairable)
			case e.ack != nil:
				c.mu.Lock()
				p := c.peers[e.ackTo]
				var n *memberlistNode
				if p != nil && p.state != "left" {
					cp := p.node
					n = &cp
				}
				c.mu.Unlock()
				if n != nil && c.ml.SendBestEffort(n, e.ack) == nil {
					c.st.msgSent.Add(1)
				}
			}
			select {
			case <-c.done:
				return
			default:
			}
		}
	}
}
