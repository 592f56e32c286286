package demo

import (
	"math"
	"math/bits"
	"sync/atomic"
	"time"
)

// subBits sets the histogram's resolution: 1<<subBits buckets per power of
// two, so a quantile is reported within 1/8 (12.5%) of the true value.
const subBits = 3

// nBuckets covers every uint64 nanosecond count.
const nBuckets = (64-subBits)<<subBits + 1<<subBits

// histogram is a log-linear histogram of durations (HDR style): values below
// 16ns exactly, above that 8 buckets per power of two. Record and Quantile are
// safe for concurrent use; the zero value is empty and ready.
type histogram struct {
	counts [nBuckets]atomic.Uint64
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
	hi := (top+1)<<shift - 1
	if top+1 > math.MaxUint64>>shift { // the last bucket
		return math.MaxUint64
	}
	return hi
}

// Record adds one duration; negative ones count as 0.
func (h *histogram) Record(d time.Duration) {
	h.counts[bucketOf(uint64(max(d, 0)))].Add(1)
}

// Count returns the number of recorded durations.
func (h *histogram) Count() uint64 {
	var n uint64
	for i := range h.counts {
		n += h.counts[i].Load()
	}
	return n
}

// Merge adds o's counts to h.
func (h *histogram) Merge(o *histogram) {
	for i := range o.counts {
		if c := o.counts[i].Load(); c > 0 {
			h.counts[i].Add(c)
		}
	}
}

// Quantile returns the q-quantile (0 < q <= 1) as the upper bound of its
// bucket, or 0 when the histogram is empty.
func (h *histogram) Quantile(q float64) time.Duration {
	var snap [nBuckets]uint64
	var total uint64
	for i := range h.counts {
		snap[i] = h.counts[i].Load()
		total += snap[i]
	}
	if total == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(total)))
	rank = min(max(rank, 1), total)
	var seen uint64
	for i, c := range snap {
		seen += c
		if seen >= rank {
			return time.Duration(min(bucketMax(i), math.MaxInt64))
		}
	}
	return time.Duration(math.MaxInt64) // unreachable
}
