package hist

import (
	"sync/atomic"
	"time"
)

// Concurrent is a [Histogram] that any number of goroutines may record into
// and read at once (each bucket an atomic counter). The zero value is empty
// and ready.
type Concurrent struct {
	counts [nBuckets]atomic.Uint64
	max    atomic.Int64
}

// Record adds one duration; negative ones count as 0.
func (c *Concurrent) Record(d time.Duration) {
	d = max(d, 0)
	c.raiseMax(int64(d)) // before the count: see Snapshot
	c.counts[bucketOf(uint64(d))].Add(1)
}

func (c *Concurrent) raiseMax(d int64) {
	for m := c.max.Load(); d > m && !c.max.CompareAndSwap(m, d); m = c.max.Load() {
	}
}

// Merge adds o's counts to c.
func (c *Concurrent) Merge(o *Concurrent) {
	c.raiseMax(o.max.Load())
	for i := range o.counts {
		if n := o.counts[i].Load(); n > 0 {
			c.counts[i].Add(n)
		}
	}
}

// Snapshot returns a copy of what was recorded so far. A Record racing
// with it is in it or not; the max is read after the counts, so it covers
// every value counted.
func (c *Concurrent) Snapshot() *Histogram {
	h := &Histogram{}
	for i := range c.counts {
		h.counts[i] = c.counts[i].Load()
		h.total += h.counts[i]
	}
	h.max = time.Duration(c.max.Load())
	return h
}

// Count returns the number of recorded durations.
func (c *Concurrent) Count() uint64 {
	var n uint64
	for i := range c.counts {
		n += c.counts[i].Load()
	}
	return n
}

// Quantile is [Histogram.Quantile] of a snapshot.
func (c *Concurrent) Quantile(q float64) time.Duration { return c.Snapshot().Quantile(q) }
