// Package hist is a log-linear (HDR-style) histogram of durations, for the
// demo and the benchmark harness: counts in buckets, never samples, each
// quantile within 1/32 (about 3%) above the true value.
package hist

import (
	"math"
	"math/bits"
	"time"
)

// subBits sets the histogram's resolution: 1<<subBits buckets per power of
// two, so a quantile is within 1/32 (~3%) of the true value.
const subBits = 5

// nBuckets covers every non-negative int64 nanosecond count.
const nBuckets = (64-subBits)<<subBits + 1<<subBits

// Histogram is a log-linear histogram of durations: values below 64ns
// exactly, above that 32 buckets per power of two. The zero value is empty
// and ready. Not safe for concurrent use: each worker records into its own
// and they are merged, or they share a [Concurrent].
type Histogram struct {
	counts [nBuckets]uint64
	total  uint64
	max    time.Duration
}

// bucketOf returns the bucket of x nanoseconds.
func bucketOf(x uint64) int {
	if x < 2<<subBits {
		return int(x)
	}
	shift := bits.Len64(x) - 1 - subBits // keep the top subBits+1 bits
	top := x >> shift                    // in [1<<subBits, 2<<subBits)
	return shift<<subBits + int(top)
}

// bucketMax returns the largest value that falls in bucket i.
func bucketMax(i int) uint64 {
	if i < 2<<subBits {
		return uint64(i)
	}
	shift := i>>subBits - 1
	top := uint64(i - shift<<subBits)
	if top+1 > math.MaxUint64>>shift {
		return math.MaxUint64
	}
	return (top+1)<<shift - 1
}

// Record adds one duration; negative ones count as 0.
func (h *Histogram) Record(d time.Duration) {
	d = max(d, 0)
	h.counts[bucketOf(uint64(d))]++
	h.total++
	h.max = max(h.max, d)
}

// Count returns the number of recorded durations.
func (h *Histogram) Count() uint64 { return h.total }

// Max returns the largest recorded duration, exactly.
func (h *Histogram) Max() time.Duration { return h.max }

// Merge adds o's counts to h.
func (h *Histogram) Merge(o *Histogram) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.total += o.total
	h.max = max(h.max, o.max)
}

// Quantile returns the q-quantile (0 < q <= 1) as the upper bound of its
// bucket (never above Max), or 0 when the histogram is empty.
func (h *Histogram) Quantile(q float64) time.Duration {
	if h.total == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(h.total)))
	rank = min(max(rank, 1), h.total)
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			return min(time.Duration(min(bucketMax(i), math.MaxInt64)), h.max)
		}
	}
	return h.max
}

// Point is one point of a latency distribution: the q-quantile is D.
type Point struct {
	Q float64       `json:"q"`
	D time.Duration `json:"ns"`
}

// Distribution returns the quantiles at 0.01 steps to 0.99, then 0.999,
// 0.9999 and 1: the curve the latency plot draws.
func (h *Histogram) Distribution() []Point {
	if h.total == 0 {
		return nil
	}
	var pts []Point
	for i := 1; i <= 99; i++ {
		q := float64(i) / 100
		pts = append(pts, Point{Q: q, D: h.Quantile(q)})
	}
	for _, q := range []float64{0.999, 0.9999, 1} {
		pts = append(pts, Point{Q: q, D: h.Quantile(q)})
	}
	return pts
}
