package local

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/dgraph-io/ristretto/v2"
)

// Both caches get the same keys, TTL and ristretto sizing, so the ratio
// BenchmarkGet / BenchmarkRistrettoGet is the cost of floors, tags,
// generations, the Close guard and the hit counter.
const benchTTL = time.Hour

var benchSizes = []int{1 << 10, 1 << 16}

func benchKeys(n int) []string {
	keys := make([]string, n)
	for i := range keys {
		keys[i] = fmt.Sprintf("user:%08d", i)
	}
	return keys
}

func warmCache(b *testing.B, n int) (*Cache[string], []string) {
	keys := benchKeys(n)
	c, err := New[string](Config{MaxCost: 1 << 30, BufferItems: 64})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(c.Close)
	for i, k := range keys {
		for c.Set(k, Entry[string]{Value: k, Version: uint64(i)}, 1, benchTTL, nil) == Dropped {
			c.Wait()
		}
	}
	c.Wait()
	for _, k := range keys {
		if _, ok := c.Get(k); !ok {
			b.Fatalf("warm cache missed %q", k)
		}
	}
	return c, keys
}

type rawItem struct {
	value   string
	version uint64
}

func warmRistretto(b *testing.B, n int) (*ristretto.Cache[string, *rawItem], []string) {
	keys := benchKeys(n)
	cfg := DefaultConfig()
	rc, err := ristretto.NewCache(&ristretto.Config[string, *rawItem]{
		NumCounters:        max(10_000, 10*(1<<30)/256),
		MaxCost:            1 << 30,
		BufferItems:        cfg.BufferItems,
		IgnoreInternalCost: true,
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(rc.Close)
	for i, k := range keys {
		for !rc.SetWithTTL(k, &rawItem{value: k, version: uint64(i)}, 1, benchTTL) {
			rc.Wait()
		}
	}
	rc.Wait()
	for _, k := range keys {
		if _, ok := rc.Get(k); !ok {
			b.Fatalf("warm ristretto missed %q", k)
		}
	}
	return rc, keys
}

func BenchmarkGet(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("keys=%d", n), func(b *testing.B) {
			c, keys := warmCache(b, n)
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				c.Get(keys[i&(n-1)])
			}
		})
	}
}

func BenchmarkRistrettoGet(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("keys=%d", n), func(b *testing.B) {
			rc, keys := warmRistretto(b, n)
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				rc.Get(keys[i&(n-1)])
			}
		})
	}
}

func BenchmarkGetParallel(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("keys=%d", n), func(b *testing.B) {
			c, keys := warmCache(b, n)
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for i := rand.IntN(n); pb.Next(); i++ {
					c.Get(keys[i&(n-1)])
				}
			})
		})
	}
}

func BenchmarkRistrettoGetParallel(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("keys=%d", n), func(b *testing.B) {
			rc, keys := warmRistretto(b, n)
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for i := rand.IntN(n); pb.Next(); i++ {
					rc.Get(keys[i&(n-1)])
				}
			})
		})
	}
}

// BenchmarkGetAfterRaise measures a hit in a bucket whose epoch keeps moving
// (a Raise of another key in the same bucket every 1024 Gets): the slow path.
func BenchmarkGetAfterRaise(b *testing.B) {
	c, keys := warmCache(b, 1<<10)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if i%1024 == 0 {
			c.Raise("other", uint64(i))
		}
		c.Get(keys[i&1023])
	}
}

func BenchmarkSet(b *testing.B) {
	c, keys := warmCache(b, 1<<10)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		c.Set(keys[i&1023], Entry[string]{Version: uint64(i + 1<<20)}, 1, benchTTL, nil)
	}
}
