package node

import (
	"sync"
	"time"
)

// A key's floor can stay above every version its source returns: a writer
// invalidated with a wrong version (nanoseconds where the row holds a
// counter), a forged request, a source restored from a backup. Loading
// again cannot help, and every read loading again turns the fence against
// stale fills into a stampede on the source. So once a load of a key ends
// below its floor, the key fails fast for staleBackoff: reads return the
// StaleError at once, and an owner answers fill requests for it from what
// it has. One load per key per back-off per node; with owner fills, the
// owner's only. A higher floor (a newer invalidation) or the back-off's end
// lets the next read try again. Group.ResetFloor is the way out.

// staleBackoff is how long a key whose load came back below its floor
// fails fast. After it, for staleMemory, the key is on probation: the next
// read makes one load, not the retries that give a lagging source time to
// catch up (those happen once per episode), so a poisoned key costs one load
// per back-off and per node that loads it (its owner, with owner fills).
const (
	staleBackoff = 3 * time.Second
	staleMemory  = time.Minute
)

// maxStaleKeys bounds the back-off table; past it the oldest record goes.
const maxStaleKeys = 4096

type staleRec struct {
	floor, got uint64    // the floor the load was judged by, and what the source returned
	until      time.Time // end of the back-off (monotonic)
	forget     time.Time // end of the probation after it
}

// staleState is what a key's record says about a read or fill now.
type staleState uint8

const (
	staleNone       staleState = iota // load as usual
	staleBackingOff                   // fail fast, no load
	staleProbation                    // one load, no retries
)

// staleKeys is the back-off table of keys whose floor stays above their
// source.
type staleKeys struct {
	// mu guards m and episodes.
	mu sync.Mutex
	m  map[string]staleRec
	// episodes are the keys whose reads are retrying a load that came back
	// below its floor: one reader (the leader) retries, the others wait for
	// its outcome instead of retrying too (closed when it ends).
	episodes map[string]chan struct{}
}

// lead makes the caller the key's retrying reader, or returns the channel
// that closes when the current one is done.
func (s *staleKeys) lead(key string) (wait <-chan struct{}, leader bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c, ok := s.episodes[key]; ok {
		return c, false
	}
	if s.episodes == nil {
		s.episodes = make(map[string]chan struct{})
	}
	s.episodes[key] = make(chan struct{})
	return nil, true
}

// endEpisode ends the leader's retries of key.
func (s *staleKeys) endEpisode(key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c, ok := s.episodes[key]; ok {
		close(c)
		delete(s.episodes, key)
	}
}

// check returns the key's record when a read or a fill request fenced by
// floor must back off now: the source returned below floor lately, and floor
// is no newer than the one it was judged by (a newer invalidation tries
// again; a lower floor, one the source satisfies, is not concerned).
func (s *staleKeys) check(key string, floor uint64, now time.Time) (staleRec, staleState) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.m[key]
	switch {
	case !ok:
		return r, staleNone
	case now.After(r.forget) || floor > r.floor:
		delete(s.m, key)
		return r, staleNone
	case floor <= r.got:
		return r, staleNone
	case now.After(r.until):
		// One caller probes; the others back off until its answer (or the
		// next back-off's end): one load per key per back-off on this node.
		r.until = now.Add(staleBackoff)
		s.m[key] = r
		return r, staleProbation
	}
	return r, staleBackingOff
}

// note starts (or renews) key's back-off; it reports whether the key was
// not backing off already (log it then).
func (s *staleKeys) note(key string, floor, got uint64, now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = make(map[string]staleRec)
	}
	old, had := s.m[key]
	had = had && !now.After(old.forget)
	if !had && len(s.m) >= maxStaleKeys {
		var oldest string
		var at time.Time
		for k, r := range s.m {
			if oldest == "" || r.until.Before(at) {
				oldest, at = k, r.until
			}
		}
		delete(s.m, oldest)
	}
	s.m[key] = staleRec{floor: floor, got: got, until: now.Add(staleBackoff), forget: now.Add(staleBackoff + staleMemory)}
	return !had
}

// clear ends key's back-off (a load came back at or above the floor).
func (s *staleKeys) clear(key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.m) > 0 {
		delete(s.m, key)
	}
}

// plausible reports whether a version from the network may raise a floor:
// at most MaxVersion, and in a ClockVersions group no further ahead of this
// node's wall clock than MaxClockSkew (a stamp is a writer's wall clock, or
// its HLC, which runs ahead of it only by what it observed).
func (g *Group[V]) plausible(version uint64) bool {
	if version > MaxVersion {
		return false
	}
	if g.cfg.Versioning == ClockVersions {
		return version <= g.n.clock.wallNow()+uint64(g.n.cfg.MaxClockSkew)+uint64(time.Second)
	}
	return true
}
