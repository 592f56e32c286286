package node

import (
	"context"
	"math"
	"sync"
	"time"
)

// The consistency sampler (Meta's Polaris, inside the library): a fraction
// of cache hits is checked, off the hot path and within a budget, against
// the source's current version. A hit whose value the source had already
// superseded, and whose invalidation had still not reached this node
// MaxStaleness later, is a value served beyond the bound: counted, logged
// with its key, and reported as nines over the last hour. It finds what the
// design cannot prevent: a write that never called Invalidate, a writer on
// the wrong side of a partition, a feed that lost changes.

const (
	defaultSampleEvery  = 1024 // one hit in 1024
	defaultSampleBudget = 10   // checks per second per group and node
	sampleQueue         = 64   // hits waiting for a check; more are dropped (counted)
)

// SamplerStats are a group's consistency sampler's figures on this node.
type SamplerStats struct {
	Checks      uint64 // sampled hits checked against the source
	Superseded  uint64 // of those, hits whose value the source had superseded when checked
	BeyondBound uint64 // of those, hits whose invalidation had not arrived MaxStaleness after the check
	Dropped     uint64 // sampled hits not checked: over budget or queue full
	CheckLoads  uint64 // checks that loaded the value (the loader is no VersionLoader)
	CheckErrors uint64 // checks the source could not answer
	// MaxBeyond is the longest a value was seen served past its supersession
	// (from the hit to the check that found the invalidation still missing).
	MaxBeyond time.Duration
	// HourChecks and HourBeyond are Checks and BeyondBound over the last hour.
	HourChecks, HourBeyond uint64
}

// Nines returns -log10 of the share of checked hits beyond the bound over
// the last hour: 3 means 99.9% within it. With none beyond, it is the most
// the sample can show, log10(HourChecks); 0 with no checks.
func (s SamplerStats) Nines() float64 {
	if s.HourChecks == 0 {
		return 0
	}
	if s.HourBeyond == 0 {
		return math.Log10(float64(s.HourChecks))
	}
	return -math.Log10(float64(s.HourBeyond) / float64(s.HourChecks))
}

type hitSample struct {
	key     string
	version uint64
	at      time.Time
}

// pendingCheck is a superseded hit waiting to see whether its invalidation
// arrives within MaxStaleness.
type pendingCheck struct {
	hitSample
	current uint64    // the source's version at the check
	due     time.Time // when to look at the floor again
}

// sampler is a group's consistency sampler.
type sampler struct {
	mask    uint32 // sample a hit when rand&mask == 0; the rate is 1/(mask+1)
	off     bool
	epoch   time.Time // the node's: the hour's buckets count minutes on the monotonic clock
	budget  int
	samples chan hitSample

	// mu guards st and the hour's buckets.
	mu      sync.Mutex
	st      SamplerStats
	buckets [60]minuteBucket
}

type minuteBucket struct {
	minute         int64 // minutes since the node's epoch, plus one (0 = unused)
	checks, beyond uint64
}

// newSampler sizes a sampler from the group's config: every is the rate's
// inverse (rounded up to a power of two), budget the checks per second.
func newSampler(every, budget int, epoch time.Time) *sampler {
	s := &sampler{budget: budget, epoch: epoch}
	if every < 0 || budget < 0 {
		s.off, s.mask = true, math.MaxUint32 // the hit path's shared draw rarely asks (see Group.lookup)
		return s
	}
	if every == 0 {
		every = defaultSampleEvery
	}
	if budget == 0 {
		s.budget = defaultSampleBudget
	}
	p := uint32(1)
	for int(p) < every && p < 1<<30 {
		p <<= 1
	}
	s.mask = p - 1
	s.samples = make(chan hitSample, sampleQueue)
	return s
}

// offer queues a sampled hit without blocking.
func (s *sampler) offer(key string, version uint64) {
	select {
	case s.samples <- hitSample{key: key, version: version, at: time.Now()}:
	default:
		s.mu.Lock()
		s.st.Dropped++
		s.mu.Unlock()
	}
}

func (s *sampler) record(f func(*SamplerStats)) {
	s.mu.Lock()
	f(&s.st)
	s.mu.Unlock()
}

// count adds one check (and whether it was beyond the bound) to the hour.
func (s *sampler) count(now time.Time, beyond bool) {
	m := int64(now.Sub(s.epoch) / time.Minute)
	s.mu.Lock()
	defer s.mu.Unlock()
	m++
	b := &s.buckets[m%60]
	if b.minute != m {
		*b = minuteBucket{minute: m}
	}
	b.checks++
	s.st.Checks++
	if beyond {
		b.beyond++
		s.st.BeyondBound++
	}
}

func (s *sampler) stats(now time.Time) SamplerStats {
	m := int64(now.Sub(s.epoch) / time.Minute)
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.st
	m++
	for _, b := range s.buckets {
		if b.minute > m-60 && b.minute <= m {
			st.HourChecks += b.checks
			st.HourBeyond += b.beyond
		}
	}
	return st
}

// sampleLoop checks the queued hits, at most budget a second, until the
// node closes.
func (g *Group[V]) sampleLoop() {
	defer g.n.watchWG.Done()
	s := g.sampler
	tick := time.NewTicker(time.Second / time.Duration(s.budget))
	defer tick.Stop()
	recheck := time.NewTimer(time.Hour)
	defer recheck.Stop()
	var pending []pendingCheck // in due order: every check waits MaxStaleness
	for {
		if len(pending) > 0 {
			recheck.Reset(time.Until(pending[0].due))
		} else {
			recheck.Stop()
		}
		select {
		case <-g.n.closing.Done():
			return
		case <-recheck.C:
			now := time.Now()
			for len(pending) > 0 && !pending[0].due.After(now) {
				g.settle(pending[0], now)
				pending = pending[1:]
			}
		case hs := <-s.samples:
			if p, superseded := g.checkSample(hs); superseded && len(pending) < sampleQueue {
				pending = append(pending, p)
			}
			select { // the budget: wait for the next tick before taking another
			case <-tick.C:
			case <-g.n.closing.Done():
				return
			}
		}
	}
}

// checkSample asks the source for the key's current version. A superseded
// hit whose invalidation has not arrived yet is returned for settle.
func (g *Group[V]) checkSample(hs hitSample) (pendingCheck, bool) {
	s := g.sampler
	ctx, cancel := context.WithTimeout(g.n.closing, g.n.cfg.LoadTimeout)
	defer cancel()
	var cur uint64
	var err error
	if vl, ok := g.cfg.Loader.(VersionLoader); ok {
		cur, err = vl.LoadVersion(ctx, hs.key)
	} else {
		_, cur, _, err = g.callLoader(ctx, hs.key, false)
		s.record(func(st *SamplerStats) { st.CheckLoads++ })
	}
	now := time.Now()
	switch {
	case IsNotFound(err):
		cur = MaxVersion // deleted: whatever was served is superseded
	case err != nil:
		s.record(func(st *SamplerStats) { st.CheckErrors++ })
		return pendingCheck{}, false
	}
	if cur <= hs.version {
		s.count(now, false)
		return pendingCheck{}, false
	}
	s.record(func(st *SamplerStats) { st.Superseded++ })
	if g.cache.ExactFloor(hs.key) > hs.version {
		s.count(now, false) // its invalidation has arrived: the hit raced it, within the bound
		return pendingCheck{}, false
	}
	return pendingCheck{hitSample: hs, current: cur, due: now.Add(g.n.cfg.MaxStaleness)}, true
}

// settle judges a superseded hit MaxStaleness after its check: if no
// invalidation above the version it served has arrived by then, the value
// was served beyond the bound (a write that did not invalidate, a lost
// change): counted and logged with its key.
func (g *Group[V]) settle(p pendingCheck, now time.Time) {
	if g.cache.ExactFloor(p.key) > p.version {
		g.sampler.count(now, false)
		return
	}
	g.sampler.count(now, true)
	served := now.Sub(p.at)
	g.sampler.record(func(st *SamplerStats) { st.MaxBeyond = max(st.MaxBeyond, served) })
	g.n.cfg.Logger.Warn("consistency sampler: a cached value was served beyond the staleness bound",
		"group", g.name, "key", p.key, "served_version", p.version, "source_version", p.current,
		"no_invalidation_for", served.Round(time.Millisecond), "bound", g.n.cfg.MaxStaleness,
		"hint", "a write to the source that did not call Invalidate (or a change the feed lost)")
}

// startSampler counts a group's sampler goroutine in the node's background
// work (Close waits for it); false once Close has begun.
func (n *Node) startSampler() bool {
	n.fmu.Lock()
	defer n.fmu.Unlock()
	if n.closedFlights {
		return false
	}
	n.watchWG.Add(1)
	return true
}
