package demo

import (
	"slices"
	"sync"
	"time"
)

// recentReads is how many judged reads a key remembers, for the late check
// in [tracker.invalidated].
const recentReads = 64

// tracker knows, per key, which versions writers have finished invalidating
// and when, so that a read can be judged stale: it started after the
// invalidation of a newer version than the one it returned had returned.
//
// A writer stamps the time right after its invalidation returns and records
// it a moment later, so a read may start after the stamp and be judged before
// the record lands. Each key therefore also remembers its last judged reads,
// and recording an invalidation judges those again: no stale read slips
// through that window (unless more than recentReads reads of the key landed
// in it, which is counted as a gap).
//
// Keys are the integers [0, n): one history per key, each with its own lock,
// so readers of different keys never contend.
type tracker struct {
	base time.Time // times are kept as monotonic offsets from base
	keys []keyHistory
}

// keyHistory is one key's returned invalidations and recent reads.
type keyHistory struct {
	// mu guards every field below.
	mu sync.Mutex
	// at[i] is a return time (offset from base), ascending; maxVer[i] is the
	// highest version among the invalidations that returned at or before
	// at[i]. A stale check is then one binary search.
	at     []time.Duration
	maxVer []uint64
	// recent is a ring of the last judged reads; next is the slot to write.
	recent []readRecord
	next   int
}

// readRecord is a judged read, kept for the late check.
type readRecord struct {
	start    time.Duration
	version  uint64
	instance int
	stale    bool
}

func newTracker(keys int, base time.Time) *tracker {
	return &tracker{base: base, keys: make([]keyHistory, keys)}
}

// invalidated records that the invalidation of version of key returned at t.
// It returns the instances of reads that were judged fresh but started after
// t and returned an older version (one entry per such read), and how many
// reads of that window may have been forgotten (ring overrun).
func (tr *tracker) invalidated(key int, version uint64, t time.Time) (late []int, gaps int) {
	h := &tr.keys[key]
	off := t.Sub(tr.base)
	h.mu.Lock()
	defer h.mu.Unlock()
	// Out-of-order records are rare and near the end: insert in place and fix
	// the running maxima.
	i := len(h.at)
	for i > 0 && h.at[i-1] > off {
		i--
	}
	h.at = slices.Insert(h.at, i, off)
	h.maxVer = slices.Insert(h.maxVer, i, version)
	if i > 0 {
		h.maxVer[i] = max(h.maxVer[i], h.maxVer[i-1])
	}
	for j := i + 1; j < len(h.maxVer); j++ {
		h.maxVer[j] = max(h.maxVer[j], h.maxVer[j-1])
	}
	// The late check.
	oldest := time.Duration(-1)
	for j := range h.recent {
		r := &h.recent[j]
		if oldest < 0 || r.start < oldest {
			oldest = r.start
		}
		if r.start > off && r.version < version && !r.stale {
			r.stale = true
			late = append(late, r.instance)
		}
	}
	if len(h.recent) == recentReads && oldest > off {
		gaps = 1 // the ring holds only reads after off: older ones may have been missed
	}
	return late, gaps
}

// stale reports whether a read of key by instance, started at start and
// returning version, is stale: some invalidation of a newer version had
// returned strictly before the read started. It remembers the read for the
// late check.
func (tr *tracker) stale(key, instance int, start time.Time, version uint64) bool {
	h := &tr.keys[key]
	off := start.Sub(tr.base)
	h.mu.Lock()
	defer h.mu.Unlock()
	// i = number of invalidations that returned strictly before start.
	i, _ := slices.BinarySearch(h.at, off)
	stale := i > 0 && h.maxVer[i-1] > version
	r := readRecord{start: off, version: version, instance: instance, stale: stale}
	if len(h.recent) < recentReads {
		h.recent = append(h.recent, r)
	} else {
		h.recent[h.next] = r
		h.next = (h.next + 1) % recentReads
	}
	return stale
}
