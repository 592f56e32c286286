package node

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkRollingRestartLoads counts the source loads a rolling restart
// costs: a cluster of 2 or 10 nodes on real sockets, every key cached, 4
// readers per node reading 200 keys while each node in turn leaves
// gracefully and comes back on its port (waiting until it serves again).
// Reported: loads per restart (the restarted node refills what it reads:
// at least its share of the keys; a survivor that stopped trusting its
// cache would reload everything it reads meanwhile).
//
//	go test -run '^$' -bench RollingRestartLoads -benchtime 3x ./node/
func BenchmarkRollingRestartLoads(b *testing.B) {
	for _, size := range []int{2, 10} {
		b.Run(fmt.Sprintf("nodes=%d", size), func(b *testing.B) { benchRolling(b, size) })
	}
}

func benchRolling(b *testing.B, size int) {
	const keys = 200
	var loads atomic.Int64
	loader := LoaderFunc[string](func(_ context.Context, k string) (string, uint64, error) {
		loads.Add(1)
		return k, 1, nil
	})
	cluster := testCluster()
	var mu sync.Mutex // guards nodes and groups: readers pick from them while a node restarts
	nodes := make([]*Node, size)
	groups := make([]*Group[string], size)
	start := func(i, port int) {
		cfg := DefaultLocalConfig(fmt.Sprintf("n%d", i))
		cfg.Cluster = cluster
		cfg.BindAddr, cfg.BindPort = "127.0.0.1", port
		if i != 0 || port != 0 {
			mu.Lock()
			for j, n := range nodes {
				if j != i && n != nil {
					cfg.Join = append(cfg.Join, n.Addr())
				}
			}
			mu.Unlock()
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		n, err := Start(ctx, cfg)
		if err != nil {
			b.Fatal(err)
		}
		g, err := NewGroup(n, "g", GroupConfig[string]{Loader: loader, SampleEvery: -1})
		if err != nil {
			b.Fatal(err)
		}
		if err := n.WaitReady(ctx); err != nil {
			b.Fatalf("n%d not ready: %v", i, err)
		}
		mu.Lock()
		nodes[i], groups[i] = n, g
		mu.Unlock()
	}
	for i := range size {
		start(i, 0)
	}
	defer func() {
		for _, n := range nodes {
			n.Close(context.Background())
		}
	}()
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for i := range size {
		for r := range 4 {
			wg.Go(func() {
				for k := r; ctx.Err() == nil; k++ {
					mu.Lock()
					g := groups[i]
					mu.Unlock()
					_, _ = g.Get(ctx, "k"+strconv.Itoa(k%keys))
					time.Sleep(100 * time.Microsecond)
				}
			})
		}
	}
	// Every key cached on every node before counting: read each through
	// each group until it is served from the cache.
	for i := range size {
		g := groups[i]
		for k := range keys {
			for {
				info, err := g.GetInfo(context.Background(), "k"+strconv.Itoa(k))
				if err != nil {
					b.Fatal(err)
				}
				if info.Source == FromCache {
					break
				}
				g.cache.Wait()
			}
		}
	}
	before := loads.Load()
	restarts := 0
	for b.Loop() {
		for i := range size {
			mu.Lock()
			n := nodes[i]
			mu.Unlock()
			_, p, _ := net.SplitHostPort(n.Addr())
			port, _ := strconv.Atoi(p)
			n.Close(context.Background())
			start(i, port)
			restarts++
		}
	}
	stop()
	wg.Wait()
	b.ReportMetric(float64(loads.Load()-before)/float64(restarts), "loads/restart")
}
