package gossip

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// TestMain checks that no goroutine survives the tests. Close waits for
// every goroutine of ours (TestCloseWaitsForGoroutines checks that at once);
// memberlist.Shutdown does not wait for its own (a probe may wait out
// ProbeInterval), so they get a few seconds to exit.
func TestMain(m *testing.M) {
	code := m.Run()
	if code == 0 {
		deadline := time.Now().Add(5 * time.Second)
		for {
			err := goleak.Find()
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				fmt.Fprintln(os.Stderr, "goleak:", err)
				code = 1
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	os.Exit(code)
}

// ownGoroutines returns the stacks of goroutines running this package's
// Cluster code.
func ownGoroutines() []string {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var out []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "nearcache/gossip.(*Cluster)") && !strings.Contains(g, "ownGoroutines") {
			out = append(out, g)
		}
	}
	return out
}

// recorder is a Handler that records what it gets.
type recorder struct {
	mu      sync.Mutex
	invs    []Invalidation
	seen    map[string]int // "origin/seq" -> deliveries
	lost    []string
	members []Member
	changed chan struct{}
}

func newRecorder() *recorder {
	return &recorder{seen: map[string]int{}, changed: make(chan struct{}, 1)}
}

func (r *recorder) poke() {
	select {
	case r.changed <- struct{}{}:
	default:
	}
}

func (r *recorder) Invalidations(b []Invalidation) {
	r.mu.Lock()
	for _, i := range b {
		r.invs = append(r.invs, i)
		r.seen[fmt.Sprintf("%s/%d/%s", i.Origin, i.Seq, i.Key)]++
	}
	r.mu.Unlock()
	r.poke()
}

func (r *recorder) Unrepairable(origin string) {
	r.mu.Lock()
	r.lost = append(r.lost, origin)
	r.mu.Unlock()
	r.poke()
}

func (r *recorder) MembersChanged(m []Member) {
	r.mu.Lock()
	r.members = m
	r.mu.Unlock()
	r.poke()
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.invs)
}

func (r *recorder) maxDeliveries() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	m := 0
	for _, n := range r.seen {
		m = max(m, n)
	}
	return m
}

func (r *recorder) distinct() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.seen)
}

func (r *recorder) lostOrigins() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.lost...)
}

// waitFor polls cond (real time; only for loopback cluster tests) until it
// holds or the deadline passes.
func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

var clusterSeq atomic.Int64

// testCluster returns a cluster name (Config.Cluster) that no other cluster
// of this process or of another test process uses. Test packages run at
// once, and a port one closes is soon handed to another: without distinct
// names a cluster still gossiping to its dead member's address would adopt
// the stranger now bound there.
func testCluster() string {
	return fmt.Sprintf("t%d-%d", os.Getpid(), clusterSeq.Add(1))
}

type testNode struct {
	c   *Cluster
	rec *recorder
}

// startCluster starts n nodes on 127.0.0.1 with the Local profile; mod
// adjusts each config.
func startCluster(t testing.TB, n int, mod func(i int, cfg *Config)) []*testNode {
	t.Helper()
	nodes := make([]*testNode, 0, n)
	t.Cleanup(func() {
		for _, tn := range nodes {
			tn.c.Close()
		}
	})
	var seed string
	cluster := testCluster()
	for i := range n {
		rec := newRecorder()
		cfg := DefaultLocalConfig()
		cfg.Name = fmt.Sprintf("n%02d", i)
		cfg.Cluster = cluster
		cfg.BindAddr = "127.0.0.1"
		cfg.Handler = rec
		if seed != "" {
			cfg.Join = []string{seed}
		}
		if mod != nil {
			mod(i, &cfg)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		c, err := Start(ctx, cfg)
		cancel()
		if err != nil {
			t.Fatalf("start %s: %v", cfg.Name, err)
		}
		if seed == "" {
			seed = c.LocalAddr()
		}
		nodes = append(nodes, &testNode{c: c, rec: rec})
	}
	waitFor(t, 10*time.Second, "full membership", func() bool {
		for _, tn := range nodes {
			if tn.c.Health().AlivePeers != n-1 {
				return false
			}
		}
		return true
	})
	return nodes
}

func inv(group, key string, v uint64) Invalidation {
	return Invalidation{Group: group, Kind: KindKey, Key: key, Version: v}
}
