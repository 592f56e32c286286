package node

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/dgraph-io/ristretto/v2"
)

// The hit path, measured against a raw ristretto Get of the same keys in the
// same run (same TTL, counters and buffer sizes as package local uses), so the
// ratio is what the node adds: the lease, the entry's key, generation and
// floor-epoch checks, the striped counters.
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

		// Two baselines: ristretto with the same TTL (its Get then reads the
		// wall clock, about 28 ns, to check expiry), and without one (the
		// least a Get can cost: no expiry at all). Both read what they got
		// (the version), as a caller does. nearcache expires lazily on its
		// own monotonic clock (local.Cache.expired).
		for _, ttl := range []time.Duration{time.Hour, 0} {
			name := "ristretto"
			if ttl == 0 {
				name = "ristretto-nottl"
			}
			b.Run(fmt.Sprintf("impl=%s/keys=%d", name, keys), func(b *testing.B) {
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
					for !rc.SetWithTTL(k, &entry{v: k, ver: 1}, 1, ttl) {
					}
				}
				rc.Wait()
				b.ReportAllocs()
				var i int
				for b.Loop() {
					e, ok := rc.Get(names[order[i&(len(order)-1)]])
					if !ok || e.ver == 0 {
						b.Fatal("miss")
					}
					i++
				}
			})
		}

		// nearcache: Standalone skips the trust lease's clock read; a
		// clustered node (here one alone on 127.0.0.1) pays it on every hit.
		// The consistency sampler is on by default (one hit in 1024);
		// "sampler=off" is the same node without it, to show its cost.
		for _, impl := range []struct {
			name   string
			cfg    Config
			sample int
		}{
			{"nearcache", Config{Name: "bench", Standalone: true}, 0},
			{"nearcache-sampler=off", Config{Name: "bench", Standalone: true}, -1},
			{"nearcache-clustered", func() Config {
				c := DefaultLocalConfig("bench")
				c.Cluster = testCluster()
				return c
			}(), 0},
		} {
			b.Run(fmt.Sprintf("impl=%s/keys=%d", impl.name, keys), func(b *testing.B) {
				n, err := Start(context.Background(), impl.cfg)
				if err != nil {
					b.Fatal(err)
				}
				defer n.Close(context.Background())
				g, err := NewGroup(n, "g", GroupConfig[string]{
					TTL: time.Hour,
					Loader: LoaderFunc[string](func(_ context.Context, k string) (string, uint64, error) {
						return k, 1, nil
					}),
					Cost:        func(string, string) int64 { return 1 },
					SampleEvery: impl.sample,
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
}

// BenchmarkJoinToReady measures, on real sockets on 127.0.0.1, how long a
// node joining a running 9-node cluster takes from Start until it trusts its
// cache (caught up) and every member, old and new, sees all 10.
//
//	go test -run '^$' -bench JoinToReady -benchtime 10x ./node/
func BenchmarkJoinToReady(b *testing.B) {
	ctx := context.Background()
	var nodes []*Node
	defer func() {
		for _, n := range nodes {
			n.Close(context.Background())
		}
	}()
	cluster := testCluster()
	start := func(name string, join []string) *Node {
		cfg := DefaultLocalConfig(name)
		cfg.Cluster = cluster
		cfg.Join = join
		n, err := Start(ctx, cfg)
		if err != nil {
			b.Fatal(err)
		}
		return n
	}
	seed := start("seed", nil)
	nodes = append(nodes, seed)
	for i := range 8 {
		nodes = append(nodes, start(fmt.Sprintf("n%d", i), []string{seed.Addr()}))
	}
	ready := func(all []*Node, want int) bool {
		for _, n := range all {
			if !n.Trusted() || len(n.Members()) != want {
				return false
			}
		}
		return true
	}
	for deadline := time.Now().Add(20 * time.Second); !ready(nodes, 9); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			b.Fatal("the 9-node cluster did not form")
		}
	}
	var took []time.Duration
	i := 0
	for b.Loop() {
		t0 := time.Now()
		n := start(fmt.Sprintf("joiner%d", i), []string{nodes[1+i%8].Addr()})
		all := append(nodes[:9:9], n)
		for !ready(all, 10) {
			if time.Since(t0) > 30*time.Second {
				b.Fatal("join did not complete in 30s")
			}
			time.Sleep(time.Millisecond)
		}
		took = append(took, time.Since(t0))
		n.Close(context.Background())
		for deadline := time.Now().Add(20 * time.Second); !ready(nodes, 9); time.Sleep(5 * time.Millisecond) {
			if time.Now().After(deadline) {
				for _, n := range nodes {
					b.Logf("%s trusted=%v members=%d health=%+v", n.Name(), n.Trusted(), len(n.Members()), n.cluster.Health())
				}
				b.Fatal("the cluster did not settle after the joiner left")
			}
		}
		i++
	}
	slices.Sort(took)
	b.ReportMetric(float64(took[len(took)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(took[len(took)-1].Microseconds())/1000, "max-ms")
}

// BenchmarkRemoteFill: a non-owner's miss served from the owner's memory, on
// real sockets on 127.0.0.1 (2 nodes, SecretKey set: HMAC on every request
// and response). Compare with groupcache's HTTPPool peer fetch in the same run:
//
//	go test -run '^$' -bench 'RemoteFill' -benchmem ./node/ ./bench/groupcachepeer/
func BenchmarkRemoteFill(b *testing.B) {
	for _, size := range []int{128, 4096} {
		b.Run(fmt.Sprintf("value=%d", size), func(b *testing.B) {
			key := make([]byte, 32)
			for i := range key {
				key[i] = byte(i)
			}
			value := make([]byte, size)
			loader := LoaderFunc[[]byte](func(context.Context, string) ([]byte, uint64, error) { return value, 1, nil })
			var nodes []*Node
			var groups []*Group[[]byte]
			cluster := testCluster()
			for i := range 2 {
				cfg := DefaultLocalConfig(fmt.Sprintf("b%d", i))
				cfg.Cluster = cluster
				cfg.SecretKey = key
				if i > 0 {
					cfg.Join = []string{nodes[0].Addr()}
				}
				n, err := Start(context.Background(), cfg)
				if err != nil {
					b.Fatal(err)
				}
				defer n.Close(context.Background())
				g, err := NewGroup(n, "g", GroupConfig[[]byte]{Loader: loader})
				if err != nil {
					b.Fatal(err)
				}
				nodes, groups = append(nodes, n), append(groups, g)
			}
			// Both trusted too: an untrusted owner stores nothing, and its
			// "warm" key would be loaded again on every fill (it failed so
			// on a loaded machine, issue 14).
			wctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			for _, n := range nodes {
				if err := n.WaitReady(wctx); err != nil {
					b.Fatal("cluster not ready:", err)
				}
			}
			cancel()
			for deadline := time.Now().Add(10 * time.Second); len(nodes[0].Members()) != 2 || len(nodes[1].Members()) != 2 || nodes[0].owners.Load().ring.Len() != 2 || nodes[1].owners.Load().ring.Len() != 2; time.Sleep(5 * time.Millisecond) {
				if time.Now().After(deadline) {
					b.Fatal("cluster did not form")
				}
			}
			// A key that node 1 owns, warm in its memory.
			var k string
			for i := 0; ; i++ {
				k = fmt.Sprintf("key-%d", i)
				if nodes[0].ownerOf("g", k) != "" {
					break
				}
			}
			if _, err := groups[1].Get(context.Background(), k); err != nil {
				b.Fatal(err)
			}
			groups[1].cache.Wait()
			g := groups[0]
			ctx := context.Background()
			lat := make([]time.Duration, 0, 1<<16)
			b.ReportAllocs()
			for b.Loop() {
				t0 := time.Now()
				if r := g.fill(ctx, k, true); r.err != nil || len(r.val) != size {
					b.Fatalf("fill: %v (%d bytes)", r.err, len(r.val))
				}
				if len(lat) < cap(lat) {
					lat = append(lat, time.Since(t0))
				}
			}
			if s := groups[1].stats(); s.FillsLocal != 1 {
				b.Fatalf("the owner loaded %d times: the benchmark did not measure its memory", s.FillsLocal)
			}
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Nanoseconds()), "p50-ns")
			b.ReportMetric(float64(lat[len(lat)*99/100].Nanoseconds()), "p99-ns")
		})
	}
}
