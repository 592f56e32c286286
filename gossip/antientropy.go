package gossip

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
	brokenMerge(m)
	for i := range m.Logs {
		c.receiveLog(&m.Logs[i], false) // queues the delivery itself
	}
	c.mu.Lock()
	for _, v := range m.Vector {
		if v.Origin == c.cfg.Name {
			continue
		}
		if s := c.streamForLocked(v.Origin, v.Incarnation, v.High); s != nil {
			c.st.gaps.Add(s.note(v.High))
		}
	}
	c.synced = true
	c.mu.Unlock()
	c.st.pushPulls.Add(1)
}
