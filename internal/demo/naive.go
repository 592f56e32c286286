package demo

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// naiveCache is what people build instead: a map behind a mutex, filled on a
// miss (cache-aside) with a TTL, and emptied of a key only by writes made
// through this same instance. Nothing tells it about the others' writes.
type naiveCache struct {
	ttl          time.Duration
	hits, misses atomic.Uint64

	// mu guards m.
	mu sync.Mutex
	m  map[string]naiveEntry
}

type naiveEntry struct {
	item    Item
	expires time.Time
}

func newNaiveCache(ttl time.Duration) *naiveCache {
	return &naiveCache{ttl: ttl, m: make(map[string]naiveEntry)}
}

func (c *naiveCache) get(key string, now time.Time) (Item, bool) {
	c.mu.Lock()
	e, ok := c.m[key]
	c.mu.Unlock()
	if !ok || !now.Before(e.expires) {
		return Item{}, false
	}
	return e.item, true
}

func (c *naiveCache) put(key string, it Item, now time.Time) {
	c.mu.Lock()
	c.m[key] = naiveEntry{item: it, expires: now.Add(c.ttl)}
	c.mu.Unlock()
}

func (c *naiveCache) del(key string) {
	c.mu.Lock()
	delete(c.m, key)
	c.mu.Unlock()
}

// naive is N naive caches over one source: the "before" of the demo.
type naive struct {
	src    *source
	caches []*naiveCache
}

func newNaive(src *source, instances int, ttl time.Duration) *naive {
	s := &naive{src: src, caches: make([]*naiveCache, instances)}
	for i := range s.caches {
		s.caches[i] = newNaiveCache(ttl)
	}
	return s
}

func (s *naive) size() int { return len(s.caches) }

func (s *naive) name(i int) string { return fmt.Sprintf("c%d", i+1) }

// read is cache-aside: serve the cached copy until it expires, else load and
// keep what was loaded (an older fill may land after a newer one: F2 too).
func (s *naive) read(ctx context.Context, i int, key string) (Item, error) {
	c := s.caches[i]
	if it, ok := c.get(key, time.Now()); ok {
		c.hits.Add(1)
		return it, nil
	}
	c.misses.Add(1)
	it, _, err := s.src.load(ctx, i, key)
	if err != nil {
		return Item{}, err
	}
	c.put(key, it, time.Now())
	return it, nil
}

// write updates the source, then drops the key from this instance only.
func (s *naive) write(ctx context.Context, i int, key string) (uint64, error) {
	v, err := s.src.write(ctx, key)
	if err != nil {
		return 0, err
	}
	s.caches[i].del(key)
	return v, nil
}

func (s *naive) live(i int) liveRow {
	c := s.caches[i]
	h, m := c.hits.Load(), c.misses.Load()
	return liveRow{name: s.name(i), hits: h, lookups: h + m, loads: s.src.loads[i].Load(), invalidations: false}
}
