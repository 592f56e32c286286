package local

// Stats is a snapshot of a [Cache]'s counters.
type Stats struct {
	Hits, Misses  uint64                // Get results (a refused entry counts as a miss)
	StaleRejected uint64                // Get found an entry below its floor / tag / generation and refused it
	Sets          [numSetResults]uint64 // Set results, indexed by SetResult: Sets[Stored], Sets[Stale], ...
	Floors, Tags  int                   // exact key floors / tag records held now
	FloorsFolded  uint64                // exact floors folded into coarse bucket floors before retention
	TagsForgotten uint64                // tag records dropped because MaxFloors were held (raises the tag base)
	Purges        uint64
	Swept         uint64 // expired entries the sweeper deleted (see Config.SweepEvery)

	// ristretto's counters; zero unless Config.Metrics. Purge resets them
	// (ristretto Clear). ristretto also counts Set's look-up of the current
	// entry (for Superseded) and Raise's as accesses.
	KeysAdded, KeysEvicted    uint64
	CostAdded, CostEvicted    uint64
	SetsDropped, SetsRejected uint64
}

// Stats returns the counters now. It takes every floor shard lock briefly.
func (c *Cache[V]) Stats() Stats {
	var s Stats
	for i := range c.stripes {
		s.Hits += c.stripes[i].hits.Load()
		s.Misses += c.stripes[i].misses.Load() + c.stripes[i].closedMisses.Load()
	}
	s.StaleRejected = c.staleRejected.Load()
	for i := range c.sets {
		s.Sets[i] = c.sets[i].Load()
	}
	s.Floors = c.floors.count()
	s.Tags, s.TagsForgotten = c.tags.stats()
	s.FloorsFolded = c.folded.Load()
	s.Purges = c.purges.Load()
	s.Swept = c.sweptEntries.Load()
	if m := c.rc.Metrics; m != nil { // nil-safe methods, and safe after Close
		s.KeysAdded, s.KeysEvicted = m.KeysAdded(), m.KeysEvicted()
		s.CostAdded, s.CostEvicted = m.CostAdded(), m.CostEvicted()
		s.SetsDropped, s.SetsRejected = m.SetsDropped(), m.SetsRejected()
	}
	return s
}
