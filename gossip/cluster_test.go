package gossip

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestPublishReachesEveryNodeOnce(t *testing.T) {
	nodes := startCluster(t, 3, func(i int, cfg *Config) { cfg.Meta = []byte(fmt.Sprintf("meta-%d", i)) })
	ctx := context.Background()
	var batch []Invalidation
	for i := range 50 {
		batch = append(batch, inv("users", fmt.Sprintf("k%d", i), uint64(i+1)))
	}
	if err := nodes[0].c.Publish(ctx, batch); err != nil {
		t.Fatal(err)
	}
	for _, tn := range nodes[1:] {
		waitFor(t, 5*time.Second, "delivery", func() bool { return tn.rec.distinct() == 50 })
	}
	// Let gossip retransmissions and heartbeats run: still exactly once.
	time.Sleep(300 * time.Millisecond)
	for i, tn := range nodes[1:] {
		if got := tn.rec.count(); got != 50 {
			t.Errorf("node %d: %d deliveries, want 50", i+1, got)
		}
		tn.rec.mu.Lock()
		first := tn.rec.invs[0]
		tn.rec.mu.Unlock()
		if first.Origin != "n00" || first.Seq == 0 || first.SentAt == 0 {
			t.Errorf("node %d: Origin/Seq/SentAt not set: %+v", i+1, first)
		}
	}
	if got := nodes[0].rec.count(); got != 0 {
		t.Errorf("publisher's own handler got %d, want 0", got)
	}
	if err := nodes[1].c.PublishAcked(ctx, []Invalidation{inv("users", "x", 9)}); err != nil {
		t.Fatalf("PublishAcked: %v", err)
	}
	ms := nodes[2].c.Members()
	if len(ms) != 3 {
		t.Fatalf("members: %+v", ms)
	}
	for i, m := range ms {
		if m.Name != fmt.Sprintf("n%02d", i) || !bytes.Equal(m.Meta, []byte(fmt.Sprintf("meta-%d", i))) || m.State != "alive" {
			t.Errorf("member %d: %+v", i, m)
		}
	}
	waitFor(t, 5*time.Second, "MembersChanged with 3 members", func() bool {
		nodes[2].rec.mu.Lock()
		defer nodes[2].rec.mu.Unlock()
		return len(nodes[2].rec.members) == 3
	})
	h := nodes[2].c.Health()
	if h.AlivePeers != 2 || h.ExpectedPeers != 2 || h.Solo || h.OldestHeard.IsZero() || h.PendingGaps != 0 {
		t.Errorf("health: %+v", h)
	}
}

// TestCloseWaitsForGoroutines: when Close returns, no goroutine of ours is
// left, even with work in flight (publishes, heartbeats, repairs).
func TestCloseWaitsForGoroutines(t *testing.T) {
	nodes := startCluster(t, 3, nil)
	for _, tn := range nodes {
		_ = tn.c.Publish(context.Background(), keys("z", 50))
	}
	for _, tn := range nodes {
		tn.c.Close()
	}
	if g := ownGoroutines(); len(g) > 0 {
		t.Fatalf("%d goroutines survive Close:\n%s", len(g), strings.Join(g, "\n\n"))
	}
}

func TestClosedCluster(t *testing.T) {
	nodes := startCluster(t, 1, nil)
	c := nodes[0].c
	if !c.Health().Solo {
		t.Error("a node with no seeds and no peers should be Solo")
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal("second Close:", err)
	}
	if err := c.Publish(context.Background(), []Invalidation{inv("g", "k", 1)}); !errors.Is(err, ErrClosed) {
		t.Fatalf("Publish after Close = %v, want ErrClosed", err)
	}
}
