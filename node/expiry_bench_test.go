package node

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkLoadsPerExpiry: 10 nodes on 127.0.0.1, 64 readers per node, all
// missing one key at once (the moment a hot key expires or is invalidated
// everywhere). Reports loader calls per expiry for nearcache (owner fills),
// for per-node coalescing only (DisableOwnerFills), and for plain cache-aside
// with no coalescing, in the same run. The loader takes 2ms.
//
//	go test -run '^$' -bench LoadsPerExpiry -benchtime 20x ./node/
func BenchmarkLoadsPerExpiry(b *testing.B) {
	const nodes, readers = 10, 64
	for _, mode := range []string{"owner-fills", "per-node", "none"} {
		b.Run("mode="+mode, func(b *testing.B) {
			var calls atomic.Int64
			load := func(ctx context.Context, key string) (string, uint64, error) {
				calls.Add(1)
				time.Sleep(2 * time.Millisecond)
				return "v", 1, nil
			}
			var groups []*Group[string]
			if mode != "none" {
				var seed string
				cluster := testCluster()
				for i := range nodes {
					cfg := DefaultLocalConfig(fmt.Sprintf("e%d", i))
					cfg.Cluster = cluster
					cfg.DisableOwnerFills = mode == "per-node"
					if i > 0 {
						cfg.Join = []string{seed}
					}
					n, err := Start(context.Background(), cfg)
					if err != nil {
						b.Fatal(err)
					}
					defer n.Close(context.Background())
					if i == 0 {
						seed = n.Addr()
					}
					g, err := NewGroup(n, "g", GroupConfig[string]{Loader: LoaderFunc[string](load)})
					if err != nil {
						b.Fatal(err)
					}
					groups = append(groups, g)
				}
				for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(5 * time.Millisecond) {
					ready := true
					for _, g := range groups {
						o := g.n.owners.Load()
						ready = ready && g.n.Trusted() && len(g.n.Members()) == nodes && (mode == "per-node" || o != nil && o.ring.Len() == nodes)
					}
					if ready {
						break
					}
					if time.Now().After(deadline) {
						b.Fatal("cluster did not form")
					}
				}
			}
			var expiries int
			for b.Loop() {
				key := fmt.Sprintf("hot-%d", expiries) // cold everywhere, as after an expiry
				expiries++
				start := make(chan struct{})
				var wg sync.WaitGroup
				for i := range nodes {
					for range readers {
						wg.Go(func() {
							<-start
							if mode == "none" { // cache-aside without coalescing: every miss loads
								load(context.Background(), key)
								return
							}
							if _, err := groups[i].Get(context.Background(), key); err != nil {
								b.Error(err)
							}
						})
					}
				}
				close(start)
				wg.Wait()
			}
			b.ReportMetric(float64(calls.Load())/float64(expiries), "loads/expiry")
		})
	}
}

// BenchmarkMembershipChange measures duplicate loads while the ring changes:
// 5 nodes; 16 readers per node read 200 cold keys while a sixth node joins
// (every iteration: a join, then a leave). A key loaded more than once is a
// duplicate: two nodes briefly disagreed on its owner.
//
//	go test -run '^$' -bench MembershipChange -benchtime 10x ./node/
func BenchmarkMembershipChange(b *testing.B) {
	var calls sync.Map // key -> *atomic.Int64
	load := func(ctx context.Context, key string) (string, uint64, error) {
		c, _ := calls.LoadOrStore(key, new(atomic.Int64))
		c.(*atomic.Int64).Add(1)
		time.Sleep(time.Millisecond)
		return "v", 1, nil
	}
	var nodesUp []*Node
	var groups []*Group[string]
	cluster := testCluster()
	start := func(name, seed string) (*Node, *Group[string]) {
		cfg := DefaultLocalConfig(name)
		cfg.Cluster = cluster
		if seed != "" {
			cfg.Join = []string{seed}
		}
		n, err := Start(context.Background(), cfg)
		if err != nil {
			b.Fatal(err)
		}
		g, err := NewGroup(n, "g", GroupConfig[string]{Loader: LoaderFunc[string](load)})
		if err != nil {
			b.Fatal(err)
		}
		return n, g
	}
	for i := range 5 {
		seed := ""
		if i > 0 {
			seed = nodesUp[0].Addr()
		}
		n, g := start(fmt.Sprintf("m%d", i), seed)
		nodesUp, groups = append(nodesUp, n), append(groups, g)
	}
	defer func() {
		for _, n := range nodesUp {
			n.Close(context.Background())
		}
	}()
	settle := func(want int) {
		for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(5 * time.Millisecond) {
			ok := true
			for _, n := range nodesUp {
				o := n.owners.Load()
				ok = ok && n.Trusted() && o != nil && o.ring.Len() == want
			}
			if ok {
				return
			}
			if time.Now().After(deadline) {
				for _, n := range nodesUp {
					o := n.owners.Load()
					b.Logf("%s trusted=%v ring=%v health=%+v", n.Name(), n.Trusted(), o.ring.Members(), n.cluster.Health())
				}
				b.Fatal("cluster did not settle")
			}
		}
	}
	settle(5)
	var keys, dups int
	iter := 0
	for b.Loop() {
		var wg sync.WaitGroup
		ctx, cancel := context.WithCancel(context.Background())
		for _, g := range groups {
			for r := range 16 {
				wg.Go(func() {
					for k := r; ctx.Err() == nil && k < 200; k += 16 {
						g.Get(ctx, fmt.Sprintf("it%d-k%d", iter, k))
					}
				})
			}
		}
		joiner, _ := start(fmt.Sprintf("joiner%d", iter), nodesUp[0].Addr())
		wg.Wait()
		cancel()
		joiner.Close(context.Background())
		settle(5)
		for k := range 200 {
			if c, ok := calls.Load(fmt.Sprintf("it%d-k%d", iter, k)); ok {
				keys++
				if c.(*atomic.Int64).Load() > 1 {
					dups += int(c.(*atomic.Int64).Load()) - 1
				}
			}
		}
		iter++
	}
	b.ReportMetric(float64(dups)/float64(keys)*100, "dup-loads-%")
	b.ReportMetric(float64(dups)/float64(iter), "dups/join")
}
