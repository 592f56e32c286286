package local

import (
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// newTestCache returns a cache closed at the end of the test (inside a
// synctest bubble when called in one).
func newTestCache(t testing.TB, cfg Config) *Cache[string] {
	t.Helper()
	c, err := New[string](cfg)
	if err != nil {
		t.Fatalf("New(%+v): %v", cfg, err)
	}
	t.Cleanup(c.Close)
	return c
}

// set stores (key, value, version) with no TTL and no tags, and applies it.
func set(t testing.TB, c *Cache[string], key, value string, version uint64) SetResult {
	t.Helper()
	r := c.Set(key, Entry[string]{Value: value, Version: version}, 1, 0, nil)
	c.Wait()
	return r
}

// lateSet puts e into ristretto as a Set that passed its checks before
// whatever the test did since prepare returned would: it bypasses Set's checks,
// like a buffered ristretto Set landing late.
type lateSet struct {
	c        *Cache[string]
	h        uint64
	e        *Entry[string]
	tagEpoch uint64
}

func prepareLate(c *Cache[string], key string, version uint64) lateSet {
	h := c.hash(key)
	b := bucketOf(h)
	e := &Entry[string]{Value: key, Version: version, key: key, bucket: b}
	e.epoch = c.floors.epochs[b].Load()
	e.gen = c.gen.Load()
	return lateSet{c: c, h: h, e: e, tagEpoch: c.tags.epoch.Load()}
}

func (l lateSet) land(tags ...TagVersion) {
	if len(tags) > 0 {
		l.e.tags = &entryTags{captured: tags, epoch: l.tagEpoch}
	}
	l.c.rc.SetWithTTL(l.h, l.e, 1, 0)
	l.c.rc.Wait()
}
