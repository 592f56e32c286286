package hist

import (
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"
)

// TestQuantilesAgainstSort compares quantiles of two merged halves with the
// exact ones of the sorted sample.
func TestQuantilesAgainstSort(t *testing.T) {
	tests := []struct {
		name    string
		samples func(r *rand.Rand) time.Duration
	}{
		{"uniform 0-10ms", func(r *rand.Rand) time.Duration { return time.Duration(r.Int64N(int64(10 * time.Millisecond))) }},
		{"exponential around 50µs", func(r *rand.Rand) time.Duration { return time.Duration(r.ExpFloat64() * 50e3) }},
		{"small exact values", func(r *rand.Rand) time.Duration { return time.Duration(r.IntN(60)) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(1, 2))
			var a, b Histogram
			var all []time.Duration
			for i := range 20000 {
				d := tc.samples(r)
				all = append(all, d)
				if i%2 == 0 {
					a.Record(d)
				} else {
					b.Record(d)
				}
			}
			a.Merge(&b)
			checkAgainst(t, &a, all)
		})
	}
	var empty Histogram
	if empty.Quantile(0.5) != 0 || empty.Distribution() != nil || empty.Count() != 0 {
		t.Error("empty histogram reports values")
	}
}

// checkAgainst checks h's count, max and quantiles against the samples.
func checkAgainst(t *testing.T, h *Histogram, all []time.Duration) {
	t.Helper()
	slices.Sort(all)
	if h.Count() != uint64(len(all)) {
		t.Fatalf("Count = %d, want %d", h.Count(), len(all))
	}
	if h.Max() != all[len(all)-1] {
		t.Fatalf("Max = %v, want %v", h.Max(), all[len(all)-1])
	}
	for _, q := range []float64{0.01, 0.5, 0.9, 0.99, 0.999, 1} {
		exact := all[int(math.Ceil(q*float64(len(all))))-1]
		got := h.Quantile(q)
		// The bucket's upper bound: never below the exact value, at most 1/32 above.
		if got < exact || float64(got-exact) > float64(exact)/32+1 {
			t.Errorf("Quantile(%v) = %v, exact %v: outside [exact, exact*(1+1/32)]", q, got, exact)
		}
	}
}

func TestQuantileEdges(t *testing.T) {
	var h Histogram
	h.Record(-5)
	if h.Quantile(1) != 0 || h.Max() != 0 {
		t.Errorf("a negative duration: Quantile(1) = %v, Max = %v, want 0", h.Quantile(1), h.Max())
	}
	h.Record(time.Duration(math.MaxInt64))
	if h.Quantile(1) != time.Duration(math.MaxInt64) {
		t.Errorf("Quantile(1) = %v, want MaxInt64", h.Quantile(1))
	}
	if pts := h.Distribution(); len(pts) != 102 || pts[len(pts)-1].Q != 1 {
		t.Errorf("Distribution: %d points, last %+v", len(pts), pts[len(pts)-1])
	}
}

// TestConcurrent records from 8 goroutines at once, reading meanwhile, and
// merges: what it reports must equal the samples (run with -race).
func TestConcurrent(t *testing.T) {
	var c, merged Concurrent
	parts := make([][]time.Duration, 8)
	var wg sync.WaitGroup
	for g := range parts {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(g), 7))
			for range 5000 {
				d := time.Duration(r.ExpFloat64() * float64(time.Millisecond))
				parts[g] = append(parts[g], d)
				c.Record(d)
			}
		})
	}
	wg.Go(func() {
		for range 100 {
			if s := c.Snapshot(); s.Count() > 0 && s.Quantile(1) > s.Max() {
				t.Errorf("a snapshot's Quantile(1) %v is above its Max %v", s.Quantile(1), s.Max())
			}
		}
	})
	wg.Wait()
	merged.Merge(&c)
	all := slices.Concat(parts...)
	checkAgainst(t, c.Snapshot(), slices.Clone(all))
	checkAgainst(t, merged.Snapshot(), all)
	if c.Count() != 40000 || c.Quantile(1) != merged.Quantile(1) {
		t.Errorf("Count %d, Quantile(1) %v vs merged %v", c.Count(), c.Quantile(1), merged.Quantile(1))
	}
}

// FuzzBucket checks the bucket arithmetic: every value falls in a bucket
// whose range holds it, and buckets are contiguous.
func FuzzBucket(f *testing.F) {
	for _, x := range []uint64{0, 1, 63, 64, 65, 127, 128, 1000, 1 << 40, math.MaxInt64, math.MaxUint64} {
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

func BenchmarkRecord(b *testing.B) {
	var h Histogram
	for i := 0; b.Loop(); i++ {
		h.Record(time.Duration(i))
	}
}

func BenchmarkConcurrentRecord(b *testing.B) {
	var c Concurrent
	b.RunParallel(func(pb *testing.PB) {
		for i := 0; pb.Next(); i++ {
			c.Record(time.Duration(i))
		}
	})
}
