package gossip

import (
	"context"
	"math"
	"time"
)

// localState is this node's push/pull state: the per-origin vector and the
// newest entries of the recent log (about stateBudget bytes).
func (c *Cluster) localState() []byte {
	c.mu.Lock()
	m := &stateMsg{From: c.cfg.Name}
	m.Vector = append(m.Vector, vecEntry{Origin: c.cfg.Name, Incarnation: c.inc, High: c.seq})
	// The vector covers the origins still in the member table (alive, or
	// failed within FailedMemberRetention), within half the message limit;
	// the log fills what is left, up to stateBudget.
	size := 64
	for origin := range c.peers {
		inc, ok := c.current[origin]
		if !ok {
			continue
		}
		if len(m.Vector) == maxOrigins || size > maxMessageSize/2 {
			break
		}
		if s := c.streams[streamKey{origin, inc}]; s != nil {
			m.Vector = append(m.Vector, vecEntry{Origin: origin, Incarnation: inc, High: s.known})
			size += 1 + len(origin) + 20
		}
	}
	m.Logs = c.log.newest(min(stateBudget, maxMessageSize-size-4096))
	c.mu.Unlock()
	return m.encode()
}

// mergeState merges a peer's push/pull state: delivers the entries not seen
// yet and learns from the vector which seqs exist (gaps).
func (c *Cluster) mergeState(buf []byte) {
	msg, err := decodeMessage(buf)
	if err != nil {
		c.st.decodeErrs.Add(1)
		c.cfg.Logger.Debug("gossip: dropping malformed state", "err", err)
		return
	}
	m, ok := msg.(*stateMsg)
	if !ok || m.From == c.cfg.Name {
		c.st.decodeErrs.Add(1)
		return
	}
	if brokenNoRepair {
		m.Logs, m.Vector = nil, nil // the broken build: a push/pull brings nothing
	}
	for i := range m.Logs {
		c.receiveLog(&m.Logs[i], false) // queues the delivery itself
	}
	var again []Invalidation
	c.mu.Lock()
	for _, v := range m.Vector {
		if !c.plausible(v.Incarnation) {
			c.rejectLocked("state vector", v.Origin, v.Incarnation)
			continue
		}
		if v.Origin == c.cfg.Name {
			if v.Incarnation > c.inc {
				again = c.outgrowLocked(v.Incarnation)
			}
			continue
		}
		if s := c.streamForLocked(v.Origin, v.Incarnation, v.High); s != nil {
			c.st.gaps.Add(s.note(v.High))
		}
	}
	c.synced = true
	c.mu.Unlock()
	c.st.pushPulls.Add(1)
	if len(again) > 0 {
		c.spawn(func() { c.republish(again) })
	}
}

// outgrowLocked moves this node past seen, an incarnation of its name the
// cluster remembers that is newer than its own. The incarnation is the start
// time on the wall clock; if the clock stepped back across a restart, peers
// take the new stream for an old one and drop all of it. The node takes
// seen+1, restarts its seqs, and returns what it published so far, to publish
// again in the new stream (floors only rise: a repeat is harmless).
func (c *Cluster) outgrowLocked(seen uint64) []Invalidation {
	if seen == math.MaxUint64 {
		return nil // cannot outgrow it; nothing sane sends this
	}
	var again []Invalidation
	for q := uint64(1); q <= c.seq; q++ {
		if e, ok := c.log.get(c.cfg.Name, c.inc, q); ok {
			again = append(again, Invalidation{Group: e.Group, Kind: e.Kind, Key: e.Key, Version: e.Version})
		}
	}
	c.cfg.Logger.Warn("gossip: the cluster remembers a newer incarnation of this node (did the clock step back?); taking a newer one",
		"incarnation", c.inc, "remembered", seen, "republish", len(again))
	c.inc, c.seq, c.hbSeq = seen+1, 0, 0
	c.st.outgrown.Add(1)
	return again
}

// republish publishes invs again after outgrowLocked, bounded by a timeout.
func (c *Cluster) republish(invs []Invalidation) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Publish(ctx, invs); err != nil {
		c.cfg.Logger.Warn("gossip: republishing after a new incarnation", "err", err)
	}
}
