package node

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// latencyLoader is a source with a fixed delay per query (a networked
// database's round trip), single and batched, counting its queries. Every
// key exists at version 1.
type latencyLoader struct {
	delay   time.Duration
	queries atomic.Int64
}

func (l *latencyLoader) Load(ctx context.Context, key string) ([]byte, uint64, error) {
	l.queries.Add(1)
	time.Sleep(l.delay) // the source's own latency, not synchronisation
	return []byte(key), 1, nil
}

func (l *latencyLoader) LoadMany(ctx context.Context, keys []string, found func(int, []byte, uint64, error)) error {
	l.queries.Add(1)
	time.Sleep(l.delay)
	for i, k := range keys {
		found(i, []byte(k), 1, nil)
	}
	return nil
}

// BenchmarkGetMany reads 100 keys per op on one node of a 4-node cluster on
// 127.0.0.1 (keyed, a source with 1 ms per query): all hits, and 10% misses
// spread over the 4 owners, with GetMany against 100 Gets (one after the
// other, and 16 at a time). It reports round trips to owners and source
// queries per op (issue 13's goal: ≤ 5 and ≤ 4 for the 10% case):
//
//	go test -run '^$' -bench GetMany -benchtime 200x ./node/
func BenchmarkGetMany(b *testing.B) {
	src := &latencyLoader{delay: time.Millisecond}
	nodes, groups := benchCluster(b, 4, src)
	warm := make([]string, 100)
	for i := range warm {
		warm[i] = fmt.Sprintf("warm-%d", i)
	}
	if res := groups[0].GetMany(context.Background(), warm); res[0].Err != nil {
		b.Fatal(res[0].Err)
	}
	groups[0].cache.Wait()
	var round atomic.Int64
	keysFor := func(misses int) []string {
		keys := append([]string{}, warm[:100-misses]...)
		r := round.Add(1)
		for j := range misses {
			keys = append(keys, fmt.Sprintf("cold-%d-%d", r, j))
		}
		return keys
	}
	ways := []struct {
		name string
		read func(g *Group[[]byte], keys []string) error
	}{
		{"GetMany", func(g *Group[[]byte], keys []string) error {
			for _, r := range g.GetMany(context.Background(), keys) {
				if r.Err != nil {
					return r.Err
				}
			}
			return nil
		}},
		{"Get-serial", func(g *Group[[]byte], keys []string) error {
			for _, k := range keys {
				if _, err := g.Get(context.Background(), k); err != nil {
					return err
				}
			}
			return nil
		}},
		{"Get-parallel16", func(g *Group[[]byte], keys []string) error {
			var wg sync.WaitGroup
			var first atomic.Pointer[error]
			sem := make(chan struct{}, 16)
			for _, k := range keys {
				sem <- struct{}{}
				wg.Go(func() {
					defer func() { <-sem }()
					if _, err := g.Get(context.Background(), k); err != nil {
						first.CompareAndSwap(nil, &err)
					}
				})
			}
			wg.Wait()
			if p := first.Load(); p != nil {
				return *p
			}
			return nil
		}},
	}
	for _, misses := range []int{0, 10} {
		for _, w := range ways {
			b.Run(fmt.Sprintf("misses=%d/%s", misses, w.name), func(b *testing.B) {
				cl := nodes[0].peerCl
				before, q := cl.Stats(), src.queries.Load()
				b.ReportAllocs()
				for b.Loop() {
					if err := w.read(groups[0], keysFor(misses)); err != nil {
						b.Fatal(err)
					}
				}
				after := cl.Stats()
				trips := (after.Batches - before.Batches) + (after.Fills - before.Fills)
				b.ReportMetric(float64(trips)/float64(b.N), "round-trips/op")
				b.ReportMetric(float64(src.queries.Load()-q)/float64(b.N), "queries/op")
			})
		}
	}
}

// benchCluster starts size keyed nodes on 127.0.0.1, each with group "g"
// over l, and waits until every one is ready and sees all.
func benchCluster(b *testing.B, size int, l Loader[[]byte]) ([]*Node, []*Group[[]byte]) {
	b.Helper()
	key := make([]byte, 32)
	for i := range key {
		key[i] = byte(i)
	}
	var nodes []*Node
	var groups []*Group[[]byte]
	cluster := testCluster()
	for i := range size {
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
		b.Cleanup(func() { n.Close(context.Background()) })
		g, err := NewGroup(n, "g", GroupConfig[[]byte]{Loader: l, SampleEvery: -1})
		if err != nil {
			b.Fatal(err)
		}
		nodes, groups = append(nodes, n), append(groups, g)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, n := range nodes {
		if err := n.WaitReady(ctx); err != nil {
			b.Fatal("cluster not ready:", err)
		}
	}
	for _, n := range nodes {
		for len(n.Members()) != size || n.owners.Load().ring.Len() != size {
			if ctx.Err() != nil {
				b.Fatal("cluster did not form")
			}
			time.Sleep(5 * time.Millisecond) // polling a real cluster against a deadline
		}
	}
	return nodes, groups
}
