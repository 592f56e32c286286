package node

import (
	"context"
	"fmt"
	"io"
	"log"
	"net"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/nearcache/nearcache/gossip/gossiptest"
)

// BenchmarkRestartToServing measures, on real sockets on 127.0.0.1, how long
// a restarted member takes from its Start until it serves cached values
// (trusted) and every other member lists it alive: after a graceful restart
// on the same port, and after a crash (no leave) restarted at once on a new
// port, in clusters of 3 and 10 (issue 11).
//
//	go test -run '^$' -bench RestartToServing -benchtime 30x -timeout 30m ./node/
func BenchmarkRestartToServing(b *testing.B) {
	for _, size := range []int{3, 10} {
		for _, how := range []string{"graceful", "crash-new-address"} {
			b.Run(fmt.Sprintf("nodes=%d/%s", size, how), func(b *testing.B) { benchRestart(b, size, how == "graceful") })
		}
	}
}

func benchRestart(b *testing.B, size int, graceful bool) {
	ctx := context.Background()
	cluster := testCluster()
	nodes := make([]*Node, size)
	defer func() {
		for _, n := range nodes {
			if n != nil {
				n.Close(context.Background())
			}
		}
	}()
	// Real sockets, wrapped so a crash can be made: the old process's
	// address is cut off before its Close, so its leave never gets out.
	nw := gossiptest.New(1)
	start := func(name string, port int, join []string) *Node {
		inner, err := memberlist.NewNetTransport(&memberlist.NetTransportConfig{
			BindAddrs: []string{"127.0.0.1"}, BindPort: port, Logger: log.New(io.Discard, "", 0)})
		if err != nil {
			b.Fatal(err)
		}
		cfg := DefaultLocalConfig(name)
		cfg.Cluster = cluster
		cfg.Join = join
		cfg.Transport = nw.Wrap("127.0.0.1:"+strconv.Itoa(inner.GetAutoBindPort()), inner)
		sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		n, err := Start(sctx, cfg)
		if err != nil {
			b.Fatal(err)
		}
		return n
	}
	nodes[0] = start("n0", 0, nil)
	for i := 1; i < size; i++ {
		nodes[i] = start(fmt.Sprintf("n%d", i), 0, []string{nodes[0].Addr()})
	}
	ready := func() bool {
		for _, n := range nodes {
			if !n.Trusted() || len(n.Members()) != size {
				return false
			}
		}
		return true
	}
	settle := func(what string) {
		for deadline := time.Now().Add(60 * time.Second); !ready(); time.Sleep(5 * time.Millisecond) {
			if time.Now().After(deadline) {
				for _, n := range nodes {
					b.Logf("%s trusted=%v members=%d health=%+v", n.Name(), n.Trusted(), len(n.Members()), n.cluster.Health())
				}
				b.Fatal(what)
			}
		}
	}
	settle("the cluster did not form")
	var took []time.Duration
	i := 0
	for b.Loop() {
		k := 1 + i%(size-1)
		old := nodes[k]
		port := 0 // a crash comes back on a new address
		if graceful {
			_, p, _ := net.SplitHostPort(old.Addr())
			port, _ = strconv.Atoi(p)
		} else {
			nw.Isolate(old.Addr()) // its leave will not get out
		}
		old.Close(context.Background())
		t0 := time.Now()
		nodes[k] = start(old.Name(), port, []string{nodes[0].Addr()})
		settle("the restarted member did not become serving and listed by all")
		took = append(took, time.Since(t0))
		i++
	}
	slices.Sort(took)
	b.ReportMetric(float64(took[len(took)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(took[len(took)-1].Microseconds())/1000, "max-ms")
}
