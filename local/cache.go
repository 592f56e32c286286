package local

import (
	"cmp"
	"errors"
	"fmt"
	"hash/maphash"
	"math"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dgraph-io/ristretto/v2"
)

// ErrClosed is the error for a closed cache: Set reports it as [Closed], and
// callers that return errors return this one.
var ErrClosed = errors.New("local: closed")

const numStripes = 64

// deadEpoch marks an entry Get refused for its floor; no bucket epoch reaches it.
const deadEpoch = math.MaxUint64

// getStripe counts Gets: enters when one starts, hits or misses when it ends,
// so enters - hits - misses are in flight (Close waits for 0). Stripes are
// picked by key hash so parallel readers of different keys do not share a
// line; 128 bytes keeps the adjacent-line prefetcher from pairing them.
type getStripe struct {
	enters       atomic.Uint64
	hits         atomic.Uint64
	misses       atomic.Uint64
	closedMisses atomic.Uint64 // Gets after Close, never entered
	_            [128 - 32]byte
}

// Cache is the in-process store of one typed group: entries with versions,
// guarded by per-key version floors and tag versions kept outside it.
type Cache[V any] struct {
	// Written by every Get. First, so (with the Cache allocated in whole pages,
	// it is > 32 KiB) each stripe sits on its own lines.
	stripes [numStripes]getStripe

	// Read by every Get, written rarely.
	rc     *ristretto.Cache[uint64, *Entry[V]]
	seed   maphash.Seed
	closed atomic.Bool
	gen    atomic.Uint64 // bumped by Purge
	jitter float64
	grace  time.Duration
	born   time.Time   // the store's clock counts from here (see Now)
	ttls   atomic.Bool // set by the first Set with a TTL: Get reads the clock
	_      [128]byte

	floors floors // epochs read by Get; shards locked by Raise, Set, slow Gets
	tags   tagTable

	// mu is read-held by everything that calls into ristretto other than Get
	// (Set, Delete, Raise, Purge, Wait) and write-held by Close: ristretto
	// panics on a Set racing its Close.
	mu sync.RWMutex

	// purgeMu serialises Purge (ristretto Clear stops and restarts its loop).
	purgeMu sync.Mutex

	closeSweep   sync.Once
	stopSweep    chan struct{} // closed by Close
	swept        chan struct{} // closed when the sweeper returned; nil without one
	sweptEntries atomic.Uint64

	staleRejected atomic.Uint64
	sets          [numSetResults]atomic.Uint64
	folded        atomic.Uint64
	purges        atomic.Uint64
}

// Now is the store's clock: monotonic nanoseconds since Config.Epoch (by
// default New's time), plus one (never 0, which ExpireAt keeps for "never").
// Entry.StoredAt and ExpireAt, floor and tag retention all count on it, never
// on the wall clock, so a wall-clock jump (NTP step, a VM restored, an
// operator's date) neither expires every entry at once, nor keeps one past
// its TTL, nor forgets a floor early. About 20 ns.
func (c *Cache[V]) Now() int64 { return int64(time.Since(c.born)) + 1 }

// New returns a running cache; Close it to stop ristretto's goroutines.
func New[V any](cfg Config) (*Cache[V], error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	c := &Cache[V]{
		seed:   maphash.MakeSeed(),
		jitter: cfg.Jitter,
		grace:  cfg.Grace,
		born:   cmp.Or(cfg.Epoch, time.Now()),
	}
	c.floors.init(cfg.FloorRetention, cfg.MaxFloors)
	c.tags.init(cfg.MaxFloors)
	rc, err := ristretto.NewCache(&ristretto.Config[uint64, *Entry[V]]{
		NumCounters:        cfg.NumCounters,
		MaxCost:            cfg.MaxCost,
		BufferItems:        cfg.BufferItems,
		Metrics:            cfg.Metrics,
		KeyToHash:          func(h uint64) (uint64, uint64) { return h, 0 },
		ShouldUpdate:       c.shouldUpdate,
		IgnoreInternalCost: true,
	})
	if err != nil {
		return nil, fmt.Errorf("local: ristretto: %w", err)
	}
	c.rc = rc
	c.stopSweep = make(chan struct{})
	if cfg.SweepEvery > 0 {
		c.swept = make(chan struct{})
		go c.sweepLoop(cfg.SweepEvery)
	}
	return c, nil
}

func (c *Cache[V]) hash(key string) uint64 { return maphash.String(c.seed, key) }

// Get returns the key's entry if it is cached, unexpired, and not below the
// key's floor, its tags' versions or the cache generation. It does not
// allocate and does not read the clock unless some entry was stored with a
// TTL (one monotonic read) or a Raise/BumpTag touched the entry since it was
// last validated.
func (c *Cache[V]) Get(key string) (*Entry[V], bool) { return c.GetAt(key, -1) }

// GetAt is Get for a caller that has just read the store's clock: now is
// [Cache.Now] read before the call, or -1 for Get to read it if it needs it.
// A clock read after a load that missed the CPU cache waits for that load
// (64 Ki keys: a hit took 470 ns with the read after the entry's, 345 ns
// with it before, same run), so Get reads the clock first, and a caller
// that reads it anyway (node's trust lease) passes its reading on.
func (c *Cache[V]) GetAt(key string, now int64) (*Entry[V], bool) {
	h := c.hash(key)
	st := &c.stripes[(h>>32)%numStripes]
	if c.closed.Load() { // keeps Gets after Close off enters, so Close drains fast
		st.closedMisses.Add(1)
		return nil, false
	}
	// enters before the closed check; Close stores closed before reading the
	// counts: either this Get sees closed, or Close waits for its hit/miss.
	st.enters.Add(1)
	if c.closed.Load() {
		st.misses.Add(1)
		return nil, false
	}
	if now < 0 && c.ttls.Load() {
		now = c.Now()
	}
	e, ok := c.rc.Get(h)
	if !ok || e.key != key {
		st.misses.Add(1)
		return nil, false
	}
	if e.ExpireAt != 0 {
		if now < 0 {
			now = c.Now() // this Get raced the first Set with a TTL
		}
		if c.expired(e, now) {
			st.misses.Add(1)
			return nil, false
		}
	}
	if !c.valid(key, e) {
		c.staleRejected.Add(1)
		st.misses.Add(1)
		return nil, false
	}
	st.hits.Add(1)
	return e, true
}

// expired reports whether e is past its ExpireAt and the Grace after it.
//
// Expiry is lazy: ristretto holds entries without a TTL, and Get checks
// ExpireAt on the store's monotonic clock. Given a TTL, ristretto reads the
// wall clock (time.Now, 28 ns of a 115 ns hit by profile) on every Get of
// the entry. What its TTL cleanup did, our sweeper does (sweep.go): an
// expired entry nobody reads keeps its share of MaxCost until the next
// sweep, a fill of its key, or ristretto's eviction.
func (c *Cache[V]) expired(e *Entry[V], now int64) bool {
	return e.ExpireAt != 0 && now >= e.ExpireAt+int64(c.grace)
}

// valid reports whether e (of key) is not below its floor, tags or generation.
func (c *Cache[V]) valid(key string, e *Entry[V]) bool {
	if e.gen != c.gen.Load() {
		return false
	}
	if cur, seen := c.floors.epochs[e.bucket].Load(), atomic.LoadUint64(&e.epoch); seen != cur {
		// Some Raise in the bucket since e was validated. cur is read before
		// the floor, so a Raise finishing after this check moves it again.
		if seen == deadEpoch || !c.floors.admits(key, e.bucket, e.Version, seen, c.Now()) {
			// Refusal is final (floors only rise, and a forgotten one leaves
			// its mark): spare later Gets the floor look-up.
			atomic.StoreUint64(&e.epoch, deadEpoch)
			return false
		}
		atomic.StoreUint64(&e.epoch, cur)
	}
	return e.tags == nil || c.tagsValid(e)
}

func (c *Cache[V]) tagsValid(e *Entry[V]) bool {
	cur := c.tags.epoch.Load()
	if atomic.LoadUint64(&e.tags.epoch) == cur {
		return true
	}
	if !c.tags.current(e.tags.captured) {
		return false
	}
	atomic.StoreUint64(&e.tags.epoch, cur)
	return true
}

// shouldUpdate runs under ristretto's shard lock when an entry replaces another
// with the same hash: it keeps a valid, unexpired entry of the same key with a
// higher version. This closes the race between two Sets that both passed the
// Superseded check (see Set).
func (c *Cache[V]) shouldUpdate(cur, prev *Entry[V]) bool {
	if prev.key != cur.key || prev.gen != cur.gen || prev.Version <= cur.Version {
		return true
	}
	return c.expired(prev, c.Now()) || !c.valid(prev.key, prev)
}

// Set stores e under key unless it is stale (see [SetResult]). cost is the
// entry's share of MaxCost (values < 1 count as 1). ttl 0 means no expiry,
// a negative ttl is Dropped; otherwise the entry expires after ttl shortened
// by the configured jitter.
// tags are the tag versions the caller captured (with TagVersion) before its
// load started; Set keeps its own copy.
func (c *Cache[V]) Set(key string, e Entry[V], cost int64, ttl time.Duration, tags []TagVersion) SetResult {
	r := c.set(key, e, cost, ttl, tags)
	c.sets[r].Add(1)
	return r
}

func (c *Cache[V]) set(key string, e Entry[V], cost int64, ttl time.Duration, tags []TagVersion) SetResult {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.closed.Load() {
		return Closed
	}
	if ttl < 0 {
		return Dropped
	}
	h := c.hash(key)
	b := bucketOf(h)
	// Read the epochs and generation before the floors and tag versions they
	// guard: a Raise or BumpTag after these reads makes Get look again.
	e.epoch = c.floors.epochs[b].Load()
	tagEpoch := c.tags.epoch.Load()
	e.gen = c.gen.Load()
	now := c.Now()
	exact, coarse := c.floors.get(key, b, now)
	if brokenNoFloor {
		exact, coarse = 0, 0 // the broken build: floors fence nothing
	}
	if e.Version < exact {
		return Stale
	}
	if len(tags) > 0 && !c.tags.current(tags) {
		return Stale
	}
	if e.Version < coarse {
		return Fenced
	}
	if cur, ok := c.rc.Get(h); ok && cur.key == key && cur.Version > e.Version && !c.expired(cur, now) && c.valid(key, cur) {
		return Superseded
	}
	e.key = key
	e.bucket = b
	e.claimed = 0
	e.tags = nil
	if len(tags) > 0 {
		e.tags = &entryTags{captured: append([]TagVersion(nil), tags...), epoch: tagEpoch}
	}
	e.StoredAt = now
	e.ExpireAt = 0
	if ttl > 0 {
		if c.jitter > 0 {
			ttl -= time.Duration(float64(ttl) * c.jitter * rand.Float64())
			ttl = max(ttl, 1)
		}
		e.ExpireAt = now + int64(ttl)
		if !c.ttls.Load() {
			c.ttls.Store(true)
		}
	}
	ne := new(Entry[V])
	*ne = e
	if !c.rc.Set(h, ne, max(cost, 1)) { // no TTL: expiry is lazy (see expired)
		return Dropped
	}
	return Stored
}

// Raise sets key's floor to max(floor, version), so versions below it are
// stale, and drops a cached entry below it. It never lowers a floor and reports
// whether the key's effective floor (see Floor) moved. Floors are kept after
// Close.
func (c *Cache[V]) Raise(key string, version uint64) bool {
	h := c.hash(key)
	before, folded := c.floors.raise(key, h, version, c.Now())
	if folded > 0 {
		c.folded.Add(uint64(folded))
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	if !c.closed.Load() {
		if e, ok := c.rc.Get(h); ok && e.key == key && e.Version < version {
			c.rc.Del(h)
		}
	}
	return version > before
}

// Floor returns max(exact floor, coarse bucket floor) of key; 0 = none.
func (c *Cache[V]) Floor(key string) uint64 {
	exact, coarse := c.floors.get(key, bucketOf(c.hash(key)), c.Now())
	return max(exact, coarse)
}

// ExactFloor returns key's exact floor (0 = none), ignoring coarse bucket
// floors: a version below it is known to be stale, while a version below
// only a coarse floor may be current (it is just not cached).
func (c *Cache[V]) ExactFloor(key string) uint64 {
	exact, _ := c.floors.get(key, bucketOf(c.hash(key)), c.Now())
	return exact
}

// BumpTag adds one to tag's version, so entries that captured an older
// version of it are refused, and returns the new version.
func (c *Cache[V]) BumpTag(tag string) uint64 {
	return c.tags.bump(tag, c.Now())
}

// TagVersion returns tag's current version: 0 if it was never bumped (or a
// higher base once tag records have been forgotten, see doc.go).
func (c *Cache[V]) TagVersion(tag string) uint64 { return c.tags.version(tag) }

// Delete drops key's entry; its floor is untouched.
func (c *Cache[V]) Delete(key string) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if !c.closed.Load() {
		c.rc.Del(c.hash(key))
	}
}

// Purge drops every entry, including Sets still buffered (their generation is
// old); floors and tags are kept.
func (c *Cache[V]) Purge() {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.closed.Load() {
		return
	}
	c.purgeMu.Lock()
	defer c.purgeMu.Unlock()
	c.gen.Add(1) // first: entries of the old generation are refused from now on
	c.rc.Clear()
	c.purges.Add(1)
}

// Wait blocks until the Sets buffered so far are applied (or dropped).
func (c *Cache[V]) Wait() {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if !c.closed.Load() {
		c.rc.Wait()
	}
}

// Close stops ristretto. It is idempotent and safe while any other method
// runs: afterwards Get misses and Set returns Closed.
func (c *Cache[V]) Close() {
	c.closeSweep.Do(func() {
		close(c.stopSweep) // before mu: a sweep in progress holds it read-locked
		if c.swept != nil {
			<-c.swept
		}
	})
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed.Load() {
		return
	}
	c.closed.Store(true)
	// Gets that incremented their stripe before seeing closed finish their
	// short, non-blocking ristretto Get; new ones see closed.
	for i := range c.stripes {
		st := &c.stripes[i]
		// Ends read before enters: equal means none was in flight when the
		// ends were read, and any Get entering since then sees closed.
		for st.hits.Load()+st.misses.Load() != st.enters.Load() {
			runtime.Gosched()
		}
	}
	c.rc.Close()
}
