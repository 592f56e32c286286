package bench

import (
	"sync"
	"sync/atomic"
	"time"
)

// tracker judges reads stale. A read is stale when it began after a newer
// version of its key was committed and that write's invalidation returned,
// yet it returned an older version. Its staleness is how long before the
// read began the returned version was superseded that way.
//
// Versions of a key are consecutive integers (the source bumps by one), so a
// key keeps superseded[v-base] = when version v was first superseded, filled
// once per version as writes complete: amortised O(1) per write, and O(1)
// per read (a read at or above the newest completed version takes no lock).
type tracker struct {
	epoch time.Time
	keys  []keyTrack
}

type keyTrack struct {
	done atomic.Uint64 // newest version whose write+invalidation completed

	// mu guards base and superseded.
	mu         sync.Mutex
	base       uint64  // version of superseded[0]
	superseded []int64 // ns since epoch when version base+i was superseded
}

func newTracker(keys int, epoch time.Time) *tracker {
	return &tracker{epoch: epoch, keys: make([]keyTrack, keys)}
}

// now returns nanoseconds since the tracker's epoch (monotonic).
func (t *tracker) now() int64 { return int64(time.Since(t.epoch)) }

// written records that the write of version of key i committed and its
// invalidation returned at ns.
func (t *tracker) written(i int, version uint64, ns int64) {
	k := &t.keys[i]
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.superseded == nil {
		// The first completed write of this key in the run: versions before
		// it are superseded from now on (older history is not ours).
		k.base = version - 1
	}
	for v := k.base + uint64(len(k.superseded)); v < version; v++ {
		k.superseded = append(k.superseded, ns)
	}
	if version > k.done.Load() {
		k.done.Store(version)
	}
}

// stale reports whether a read of key i that began at began (ns) and
// returned version was stale, and by how much.
func (t *tracker) stale(i int, version uint64, began int64) (bool, time.Duration) {
	k := &t.keys[i]
	if version >= k.done.Load() {
		return false, 0
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	var at int64
	switch {
	case version < k.base:
		if len(k.superseded) == 0 {
			return false, 0
		}
		at = k.superseded[0] // superseded no later than base was
	case version-k.base < uint64(len(k.superseded)):
		at = k.superseded[version-k.base]
	default:
		return false, 0
	}
	if at >= began {
		return false, 0
	}
	return true, time.Duration(began - at)
}
