package local

import (
	"sync"
	"sync/atomic"
	"time"
)

const (
	numBuckets     = 4096 // floor buckets: an atomic epoch and a coarse floor each
	numFloorShards = 64   // exact-floor map shards; bucket b lives in shard b%numFloorShards
	bucketsPerShd  = numBuckets / numFloorShards
)

// floorRec is an exact key floor, or a coarse bucket floor.
type floorRec struct {
	version  uint64
	raisedAt int64  // unix nanos when last raised
	epoch    uint64 // bucket epoch the Raise that set version moved it to
}

// fifoItem queues an exact floor for forgetting, oldest first.
type fifoItem struct {
	key string
	h   uint64
	at  int64 // raisedAt when queued; a record raised since is re-queued, not forgotten
}

// floorShard holds the exact floors of the keys whose bucket falls in it, and
// the coarse floors of those buckets.
type floorShard struct {
	// mu guards every field below.
	mu     sync.Mutex
	exact  map[string]floorRec
	fifo   []fifoItem // records in (roughly) raise order; fifo[head:] are queued
	head   int
	coarse [bucketsPerShd]floorRec
	// forgot[i] is the highest epoch of a floor of bucket i that was forgotten
	// (retention passed): an entry validated before it cannot be validated now.
	forgot [bucketsPerShd]uint64
	_      [64]byte // keep neighbouring shards' locks off one cache line
}

// floors is the floor memory: bucket epochs, sharded exact floors, folded
// coarse floors.
type floors struct {
	retention int64 // FloorRetention in nanos
	perShard  int   // exact floors kept per shard
	epochs    [numBuckets]atomic.Uint64
	shards    [numFloorShards]floorShard
}

func (f *floors) init(retention time.Duration, maxFloors int) {
	f.retention = int64(retention)
	f.perShard = max(1, maxFloors/numFloorShards)
	for i := range f.shards {
		f.shards[i].exact = make(map[string]floorRec)
	}
}

func bucketOf(h uint64) uint32 { return uint32(h % numBuckets) }

func (f *floors) shard(b uint32) *floorShard { return &f.shards[b%numFloorShards] }

// get returns the key's live exact and coarse floors at now (0 = none).
func (f *floors) get(key string, b uint32, now int64) (exact, coarse uint64) {
	s := f.shard(b)
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.getLocked(key, b, now, f.retention)
}

func (s *floorShard) getLocked(key string, b uint32, now, retention int64) (exact, coarse uint64) {
	if r, ok := s.exact[key]; ok && now-r.raisedAt < retention {
		exact = r.version
	}
	if r := s.coarse[b/numFloorShards]; now-r.raisedAt < retention {
		coarse = r.version
	}
	return exact, coarse
}

// admits reports whether an entry of key with version v, last validated at
// bucket epoch seen, is valid now: not below a live floor, and not older than
// a forgotten one it was never checked against.
func (f *floors) admits(key string, b uint32, v, seen uint64, now int64) bool {
	s := f.shard(b)
	s.mu.Lock()
	defer s.mu.Unlock()
	exact, coarse := s.getLocked(key, b, now, f.retention)
	if brokenNoFloor {
		exact, coarse = 0, 0 // the broken build: floors fence nothing
	}
	if v < max(exact, coarse) {
		return false
	}
	forgot := s.forgot[b/numFloorShards]
	if r, ok := s.exact[key]; ok && now-r.raisedAt >= f.retention { // expired, not yet swept
		forgot = max(forgot, r.epoch)
	}
	if r := s.coarse[b/numFloorShards]; now-r.raisedAt >= f.retention {
		forgot = max(forgot, r.epoch)
	}
	return seen >= forgot
}

// raise sets the key's exact floor to max(floor, v) and, if it moved, bumps
// the bucket epoch. It returns the effective floor (max of exact and coarse)
// before, and how many exact floors it folded to make room.
func (f *floors) raise(key string, h, v uint64, now int64) (before uint64, folded int) {
	b := bucketOf(h)
	s := f.shard(b)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sweepLocked(now, f.retention)
	exact, coarse := s.getLocked(key, b, now, f.retention)
	before = max(exact, coarse)
	if v < exact {
		return before, 0
	}
	old, ok := s.exact[key]
	switch {
	case !ok:
		for len(s.exact) >= f.perShard {
			if s.foldOldestLocked(now, f.retention) {
				folded++
			}
		}
		s.fifo = append(s.fifo, fifoItem{key: key, h: h, at: now})
	case now-old.raisedAt >= f.retention: // expired, not yet swept: forget it now
		s.forgetLocked(b, old.epoch)
	}
	rec := floorRec{version: v, raisedAt: now, epoch: old.epoch}
	if v > exact {
		// After the floor is visible to readers that take s.mu: see Cache.valid.
		rec.epoch = f.epochs[b].Add(1)
	}
	// v == exact refreshes raisedAt: the invalidation was heard again.
	s.exact[key] = rec
	return before, folded
}

func (s *floorShard) forgetLocked(b uint32, epoch uint64) {
	i := b / numFloorShards
	s.forgot[i] = max(s.forgot[i], epoch)
}

// sweepLocked forgets exact floors not raised for retention.
func (s *floorShard) sweepLocked(now, retention int64) {
	for s.head < len(s.fifo) && now-s.fifo[s.head].at >= retention {
		it := s.popLocked()
		r, ok := s.exact[it.key]
		switch {
		case !ok:
		case r.raisedAt > it.at: // raised since it was queued
			s.fifo = append(s.fifo, fifoItem{key: it.key, h: it.h, at: r.raisedAt})
		default:
			delete(s.exact, it.key)
			s.forgetLocked(bucketOf(it.h), r.epoch)
		}
	}
}

// foldOldestLocked moves the oldest exact floor into its coarse bucket floor.
// It reports whether a record was folded (false: a stale queue item was skipped).
func (s *floorShard) foldOldestLocked(now, retention int64) bool {
	it := s.popLocked()
	r, ok := s.exact[it.key]
	if !ok {
		return false
	}
	if r.raisedAt > it.at {
		s.fifo = append(s.fifo, fifoItem{key: it.key, h: it.h, at: r.raisedAt})
		return false
	}
	delete(s.exact, it.key)
	b := bucketOf(it.h)
	c := &s.coarse[b/numFloorShards]
	if now-c.raisedAt >= retention { // an expired coarse floor starts afresh
		s.forgetLocked(b, c.epoch)
		*c = floorRec{}
	}
	c.version = max(c.version, r.version)
	c.epoch = max(c.epoch, r.epoch)
	c.raisedAt = now
	return true
}

func (s *floorShard) popLocked() fifoItem {
	it := s.fifo[s.head]
	s.fifo[s.head] = fifoItem{}
	s.head++
	if s.head > 32 && s.head*2 > len(s.fifo) {
		n := copy(s.fifo, s.fifo[s.head:])
		clear(s.fifo[n:])
		s.fifo = s.fifo[:n]
		s.head = 0
	}
	return it
}

// count returns the exact floors held now (including expired ones not yet swept).
func (f *floors) count() int {
	n := 0
	for i := range f.shards {
		s := &f.shards[i]
		s.mu.Lock()
		n += len(s.exact)
		s.mu.Unlock()
	}
	return n
}
