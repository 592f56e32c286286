package node

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/dgraph-io/ristretto/v2"
)

// The hit path, measured against a raw ristretto Get of the same keys in the
// same run (same TTL, counters and buffer sizes as package local uses), so the
// ratio is what the node adds: the trust flag, the floor-epoch check, a counter.
//
//	go test -run '^$' -bench 'Hit' -benchmem -count 5 ./node/ | tee hit.txt
func BenchmarkHit(b *testing.B) {
	for _, keys := range []int{1 << 10, 1 << 16} {
		names := make([]string, keys)
		for i := range names {
			names[i] = fmt.Sprintf("user:%08d", i)
		}
		order := make([]int, 1<<16)
		rng := rand.New(rand.NewPCG(42, 42))
		for i := range order {
			order[i] = rng.IntN(keys)
		}

		b.Run(fmt.Sprintf("impl=ristretto/keys=%d", keys), func(b *testing.B) {
			type entry struct {
				v   string
				ver uint64
			}
			rc, err := ristretto.NewCache(&ristretto.Config[string, *entry]{
				NumCounters: 10 * int64(keys), MaxCost: 64 << 20, BufferItems: 64,
			})
			if err != nil {
				b.Fatal(err)
			}
			defer rc.Close()
			for _, k := range names {
				for !rc.SetWithTTL(k, &entry{v: k, ver: 1}, 1, time.Hour) {
				}
			}
			rc.Wait()
			b.ReportAllocs()
			var i int
			for b.Loop() {
				if _, ok := rc.Get(names[order[i&(len(order)-1)]]); !ok {
					b.Fatal("miss")
				}
				i++
			}
		})

		b.Run(fmt.Sprintf("impl=nearcache/keys=%d", keys), func(b *testing.B) {
			n, err := Start(context.Background(), Config{Name: "bench", Standalone: true})
			if err != nil {
				b.Fatal(err)
			}
			defer n.Close()
			g, err := NewGroup(n, "g", GroupConfig[string]{
				TTL: time.Hour,
				Loader: LoaderFunc[string](func(_ context.Context, k string) (string, uint64, error) {
					return k, 1, nil
				}),
				Cost: func(string, string) int64 { return 1 },
			})
			if err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			for _, k := range names {
				for {
					g.Get(ctx, k)
					g.cache.Wait()
					if _, ok := g.cache.Get(k); ok {
						break
					}
				}
			}
			b.ReportAllocs()
			var i int
			for b.Loop() {
				if _, err := g.Get(ctx, names[order[i&(len(order)-1)]]); err != nil {
					b.Fatal(err)
				}
				i++
			}
			if s := g.stats(); s.Misses > uint64(len(names))*4 {
				b.Fatalf("%d misses: the benchmark did not measure hits", s.Misses)
			}
		})
	}
}
