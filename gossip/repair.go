package gossip

import (
	"slices"
	"time"

	"github.com/hashicorp/memberlist"
)

// repairLoop looks for gaps every repairTick. A gap older than repairGrace
// is asked for over TCP: first from its origin (when alive and still on the
// same incarnation), then from the other alive peers in turn, each given
// repairTimeout to answer. After maxRepairAttempts answers without the data
// (or 3*maxRepairAttempts requests without any progress) the gap is given
// up: the Handler is told the origin is unrepairable.
func (c *Cluster) repairLoop() {
	defer c.wg.Done()
	if brokenNoRepair {
		return // the broken build: gaps are never asked for
	}
	t := time.NewTicker(repairTick)
	defer t.Stop()
	for {
		select {
		case <-c.done:
			return
		case <-t.C:
		}
		c.repairOnce(time.Now())
	}
}

type repairJob struct {
	key  streamKey
	node memberlist.Node
	msg  []byte
}

func (c *Cluster) repairOnce(now time.Time) {
	var jobs []repairJob
	var lost []string
	c.mu.Lock()
	var peers []memberlist.Node
	for k, s := range c.streams {
		if s.missing() == 0 {
			s.resetRepair()
			if c.current[k.origin] != k.inc {
				delete(c.streams, k) // an old incarnation, complete
			}
			continue
		}
		if s.gapSince.IsZero() {
			s.gapSince = now
			continue
		}
		if now.Sub(s.gapSince) < repairGrace {
			continue
		}
		if s.inflight {
			if now.Sub(s.askedAt) < repairTimeout {
				continue
			}
			s.inflight = false // timed out: ask the next one
		}
		if s.attempts >= maxRepairAttempts || s.tries >= 3*maxRepairAttempts {
			n := s.skip(s.known)
			c.st.unrepairable.Add(n)
			s.resetRepair()
			lost = append(lost, k.origin)
			c.cfg.Logger.Warn("gossip: invalidations lost", "origin", k.origin, "count", n)
			continue
		}
		if peers == nil {
			peers = c.alivePeersLocked()
			slices.SortFunc(peers, func(a, b memberlist.Node) int {
				switch {
				case a.Name < b.Name:
					return -1
				case a.Name > b.Name:
					return 1
				}
				return 0
			})
		}
		cands := make([]memberlist.Node, 0, len(peers))
		var others []memberlist.Node
		for _, p := range peers {
			if p.Name == k.origin {
				if c.current[k.origin] == k.inc {
					cands = append(cands, p)
				}
			} else {
				others = append(others, p)
			}
		}
		cands = append(cands, others...)
		if len(cands) == 0 {
			continue // nobody to ask: wait (Health shows the gap)
		}
		target := cands[s.rot%len(cands)]
		s.rot++
		s.tries++
		s.inflight, s.askedAt = true, now
		req := &repairReqMsg{From: c.cfg.Name, Origin: k.origin, Incarnation: k.inc, Ranges: s.missingRanges(maxRepairSeqs)}
		jobs = append(jobs, repairJob{key: k, node: target, msg: req.encode()})
	}
	c.mu.Unlock()
	for _, o := range lost {
		c.disp.unrepairable(o)
	}
	for _, j := range jobs {
		c.spawn(func() {
			if err := c.ml.SendReliable(&j.node, j.msg); err != nil {
				c.cfg.Logger.Debug("gossip: repair request failed", "to", j.node.Name, "err", err)
				c.mu.Lock()
				if s := c.streams[j.key]; s != nil {
					s.inflight = false
				}
				c.mu.Unlock()
				return
			}
			c.st.msgSent.Add(1)
		})
	}
}

// answerRepair answers a repair request from the recent log, over TCP.
func (c *Cluster) answerRepair(m *repairReqMsg) {
	resp := &repairRespMsg{From: c.cfg.Name, Log: originLog{Origin: m.Origin, Incarnation: m.Incarnation}}
	c.mu.Lock()
	p := c.peers[m.From]
	if p == nil || p.state == "left" {
		c.mu.Unlock()
		return
	}
	node := p.node
	if m.Origin == c.cfg.Name && m.Incarnation == c.inc {
		resp.Earliest = c.log.evicted[streamKey{m.Origin, m.Incarnation}] + 1
	}
	size, asked := 0, 0
outer:
	for _, r := range m.Ranges {
		for q := r.First; q <= r.Last && q >= r.First; q++ {
			asked++
			if asked > maxRepairSeqs || size > maxMessageSize/2 {
				break outer
			}
			if e, ok := c.log.get(m.Origin, m.Incarnation, q); ok {
				resp.Log.Entries = append(resp.Log.Entries, e)
				size += 24 + len(e.Group) + len(e.Key)
			}
		}
	}
	c.mu.Unlock()
	slices.SortFunc(resp.Log.Entries, func(a, b Invalidation) int {
		switch {
		case a.Seq < b.Seq:
			return -1
		case a.Seq > b.Seq:
			return 1
		}
		return 0
	})
	resp.Log.Entries = slices.CompactFunc(resp.Log.Entries, func(a, b Invalidation) bool { return a.Seq == b.Seq })
	msg := resp.encode()
	c.spawn(func() {
		if err := c.ml.SendReliable(&node, msg); err == nil {
			c.st.msgSent.Add(1)
		}
	})
}

// receiveRepair applies a repair response.
func (c *Cluster) receiveRepair(m *repairRespMsg) {
	fresh := c.receiveLog(&m.Log, false) // queues the delivery itself
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.streams[streamKey{m.Log.Origin, m.Log.Incarnation}]
	if s == nil || s.missing() == 0 {
		return
	}
	s.inflight = false
	if len(fresh) > 0 {
		s.attempts = 0
		return
	}
	s.attempts++
	if m.From == m.Log.Origin && m.Earliest > s.high+1 && s.attempts < maxRepairAttempts-1 {
		// The origin itself evicted them: one more peer may still hold them.
		s.attempts = maxRepairAttempts - 1
	}
}
