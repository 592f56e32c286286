package demo

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

func TestHistogramQuantile(t *testing.T) {
	tests := []struct {
		name   string
		values []time.Duration
		q      float64
		want   time.Duration
	}{
		{name: "empty", q: 0.5, want: 0},
		{name: "one", values: []time.Duration{7}, q: 0.99, want: 7},
		{name: "small exact", values: []time.Duration{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, q: 0.5, want: 5},
		{name: "negative counts as zero", values: []time.Duration{-5}, q: 1, want: 0},
		{name: "p99 of 99 fast and 1 slow", values: append(slices.Repeat([]time.Duration{time.Microsecond}, 99), time.Second), q: 0.99, want: time.Microsecond},
		{name: "max of 99 fast and 1 slow", values: append(slices.Repeat([]time.Duration{time.Microsecond}, 99), time.Second), q: 1, want: time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var h histogram
			for _, v := range tt.values {
				h.Record(v)
			}
			got := h.Quantile(tt.q)
			// Reported as its bucket's upper bound: at most 1/8 above.
			if got < tt.want || float64(got) > float64(tt.want)*1.125 {
				t.Errorf("Quantile(%v) = %v, want %v (to within +12.5%%)", tt.q, got, tt.want)
			}
		})
	}
}

// TestHistogramAgainstSort compares quantiles with the exact ones of a sorted
// sample.
func TestHistogramAgainstSort(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var h, merged histogram
	vals := make([]time.Duration, 10000)
	for i := range vals {
		vals[i] = time.Duration(rng.ExpFloat64() * float64(time.Millisecond))
		h.Record(vals[i])
	}
	merged.Merge(&h)
	slices.Sort(vals)
	for _, q := range []float64{0.5, 0.9, 0.99, 0.999} {
		exact := vals[int(math.Ceil(q*float64(len(vals))))-1]
		got := merged.Quantile(q)
		if got < exact || float64(got) > float64(exact)*1.125+1 {
			t.Errorf("Quantile(%v) = %v, exact %v", q, got, exact)
		}
	}
	if merged.Count() != uint64(len(vals)) {
		t.Errorf("Count after Merge = %d, want %d", merged.Count(), len(vals))
	}
}

// FuzzBucket checks the bucket arithmetic: every value falls in a bucket
// whose range holds it, and buckets are contiguous.
func FuzzBucket(f *testing.F) {
	for _, x := range []uint64{0, 1, 15, 16, 17, 31, 32, 1000, 1 << 40, math.MaxInt64, math.MaxUint64} {
		f.Add(x)
	}
	f.Fuzz(func(t *testing.T, x uint64) {
		i := bucketOf(x)
		if i < 0 || i >= nBuckets {
			t.Fatalf("bucketOf(%d) = %d, out of [0, %d)", x, i, nBuckets)
		}
		if hi := bucketMax(i); x > hi {
			t.Fatalf("bucketOf(%d) = %d whose max is %d", x, i, hi)
		}
		if i > 0 {
			if lo := bucketMax(i-1) + 1; x < lo {
				t.Fatalf("bucketOf(%d) = %d whose min is %d", x, i, lo)
			}
		}
		if bucketOf(bucketMax(i)) != i {
			t.Fatalf("bucketOf(bucketMax(%d)) = %d", i, bucketOf(bucketMax(i)))
		}
	})
}

func BenchmarkHistogramRecord(b *testing.B) {
	var h histogram
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		h.Record(time.Duration(i))
	}
}
