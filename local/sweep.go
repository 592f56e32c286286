package local

import "time"

// Expiry is lazy (see expired): Get judges ExpireAt itself, and ristretto,
// holding entries without a TTL, never drops an expired one. The sweeper
// does, every Config.SweepEvery, so an expired entry whose key is not read
// again does not keep its share of MaxCost until ristretto's policy happens
// to evict it. One pass visits every entry (ristretto's IterValues, each of
// its 256 shards read-locked in turn).

// sweepLoop runs sweep every interval until Close.
func (c *Cache[V]) sweepLoop(every time.Duration) {
	defer close(c.swept)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-c.stopSweep:
			return
		case <-t.C:
			c.sweep()
		}
	}
}

// sweep deletes the entries expired now and returns how many it found. A
// fill of the same key racing the delete may be deleted with it: a miss
// later, never a stale read.
func (c *Cache[V]) sweep() int {
	if !c.ttls.Load() {
		return 0
	}
	c.mu.RLock() // ristretto must not be closed under Del
	defer c.mu.RUnlock()
	if c.closed.Load() {
		return 0
	}
	now := c.Now()
	var dead []uint64
	c.rc.IterValues(func(e *Entry[V]) bool {
		if c.expired(e, now) {
			dead = append(dead, c.hash(e.key)) // no Del here: IterValues holds the shard's lock
		}
		return false
	})
	for _, h := range dead {
		c.rc.Del(h)
	}
	c.sweptEntries.Add(uint64(len(dead)))
	return len(dead)
}
