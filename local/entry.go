package local

import (
	"fmt"
	"sync/atomic"
	"time"
)

// Entry is one cached value with its version and timing. A *Entry returned by
// [Cache.Get] is shared with other readers: treat it as read-only.
type Entry[V any] struct {
	// Filled by Set; the caller's values are ignored. First, so that Get's
	// checks read one cache line.
	key     string     // guards against 64-bit hash collisions (ristretto is keyed by our hash)
	gen     uint64     // cache generation at Set; Purge moves the generation on
	epoch   uint64     // floor-bucket epoch seen when last validated; accessed atomically
	tags    *entryTags // nil = untagged
	bucket  uint32     // floor bucket index
	claimed uint32     // set once by ClaimRefresh; accessed atomically

	ExpireAt int64 // Cache.Now of the jittered expiry; 0 = never; filled by Set (read by every Get)
	Value    V
	Version  uint64
	StoredAt int64         // Cache.Now when Set accepted it; filled by Set
	LoadTime time.Duration // how long the fill took (for early refresh); given by the caller
	Absent   bool          // the source has no such key (a negative entry); Value is the zero value
}

// entryTags are the tag versions a fill captured before its load started.
type entryTags struct {
	captured []TagVersion
	epoch    uint64 // tag epoch seen when last validated; accessed atomically
}

// ClaimRefresh reports true to the first caller only, per stored entry: it
// lets one reader start a background refresh of a cached value while the rest
// keep reading it, until the refreshed entry replaces it.
func (e *Entry[V]) ClaimRefresh() bool {
	return atomic.CompareAndSwapUint32(&e.claimed, 0, 1)
}

// TagVersion is a tag and the version of it a fill observed before loading.
type TagVersion struct {
	Tag     string
	Version uint64
}

// SetResult says what [Cache.Set] did with an entry.
type SetResult int

const (
	Stored     SetResult = iota // handed to ristretto (it may still drop it under admission; Wait to apply)
	Stale                       // e.Version < the key's exact floor, or a captured tag version < the tag's current one
	Fenced                      // below a coarse bucket floor only (exact floor was folded away): value may be current, not cached
	Superseded                  // a cached entry with a higher version exists
	Dropped                     // ristretto refused it (buffer full)
	Closed                      // the cache is closed
	numSetResults
)

func (r SetResult) String() string {
	switch r {
	case Stored:
		return "Stored"
	case Stale:
		return "Stale"
	case Fenced:
		return "Fenced"
	case Superseded:
		return "Superseded"
	case Dropped:
		return "Dropped"
	case Closed:
		return "Closed"
	}
	return fmt.Sprintf("SetResult(%d)", int(r))
}
