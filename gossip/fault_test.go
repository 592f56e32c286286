package gossip

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/nearcache/nearcache/gossip/gossiptest"
)

// Fault tests run under testing/synctest on gossiptest's in-memory network:
// time is fake, so timeouts and intervals cost nothing and runs are
// deterministic up to goroutine scheduling.

func fakeAddr(i int) string { return fmt.Sprintf("127.0.0.1:%d", 7000+i) }

// startFake starts n nodes on the in-memory network inside a bubble. It must
// be called inside synctest.Test.
func startFake(t *testing.T, nw *gossiptest.Network, n int, mod func(i int, cfg *Config)) []*testNode {
	t.Helper()
	// memberlist.Shutdown does not wait for its goroutines: let fake time
	// pass after every Close so they exit inside the bubble.
	t.Cleanup(func() {
		time.Sleep(10 * time.Second)
		synctest.Wait()
	})
	nodes := make([]*testNode, 0, n)
	t.Cleanup(func() {
		for _, tn := range nodes {
			tn.c.Close()
		}
	})
	for i := range n {
		nodes = append(nodes, startFakeNode(t, nw, i, n > 1 && i > 0, mod))
	}
	waitFake(t, 10*time.Second, "full membership", func() bool {
		for _, tn := range nodes {
			if tn.c.Health().AlivePeers != n-1 {
				return false
			}
		}
		return true
	})
	return nodes
}

func startFakeNode(t *testing.T, nw *gossiptest.Network, i int, join bool, mod func(i int, cfg *Config)) *testNode {
	t.Helper()
	tr, err := nw.Transport(fakeAddr(i))
	if err != nil {
		t.Fatal(err)
	}
	rec := newRecorder()
	cfg := DefaultLocalConfig()
	cfg.Name = fmt.Sprintf("n%02d", i)
	cfg.Transport = tr
	cfg.Handler = rec
	if join {
		cfg.Join = []string{fakeAddr(0)}
	}
	if mod != nil {
		mod(i, &cfg)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := Start(ctx, cfg)
	if err != nil {
		t.Fatalf("start %s: %v", cfg.Name, err)
	}
	return &testNode{c: c, rec: rec}
}

// waitFake advances fake time in 10ms steps until cond holds; it returns the
// fake time it took.
func waitFake(t *testing.T, limit time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		synctest.Wait()
		if cond() {
			return time.Since(start)
		}
		if time.Since(start) > limit {
			t.Fatalf("%s: not reached after %v of fake time", what, limit)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func keys(prefix string, n int) []Invalidation {
	out := make([]Invalidation, n)
	for i := range out {
		out[i] = inv("g", fmt.Sprintf("%s%d", prefix, i), uint64(i+1))
	}
	return out
}

// TestDropConverges: with 20% of packets lost, every node still receives
// every one of 200 invalidations (from 2 origins), exactly once, without
// anything declared unrepairable, well within one push/pull interval (2s):
// so by gap repair, not only anti-entropy. Catches: no dedupe, no gap
// detection or repair (anti-entropy alone needs push/pull rounds).
func TestDropConverges(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := gossiptest.New(42)
		nodes := startFake(t, nw, 5, nil)
		nw.SetDrop(0.2)
		start := time.Now()
		ctx := context.Background()
		for r := range 20 {
			origin := nodes[r%2].c
			if err := origin.Publish(ctx, keys(fmt.Sprintf("r%d-", r), 10)); err != nil {
				t.Fatal(err)
			}
			time.Sleep(5 * time.Millisecond)
		}
		took := waitFake(t, 1500*time.Millisecond, "every node has all 200", func() bool {
			for i, tn := range nodes {
				want := 200 - 100 // its own 100 are not delivered to itself
				if i >= 2 {
					want = 200
				}
				if tn.rec.distinct() != want {
					return false
				}
			}
			return true
		})
		var gaps, repaired uint64
		for i, tn := range nodes {
			if tn.rec.maxDeliveries() != 1 {
				t.Errorf("node %d: an invalidation was delivered more than once", i)
			}
			if l := tn.rec.lostOrigins(); len(l) != 0 {
				t.Errorf("node %d: Unrepairable(%v) under 20%% drop", i, l)
			}
			st := tn.c.Stats()
			gaps += st.GapsDetected
			repaired += st.Repaired
		}
		if gaps == 0 {
			t.Error("no gap detected with 20% drop: the test did not exercise repair")
		}
		t.Logf("20%% drop, 5 nodes, 200 invalidations: converged %v (fake time) after the last publish, %v after the first; gaps %d, repaired %d; network %+v",
			took, time.Since(start), gaps, repaired, nw.Stats())
	})
}

// TestDuplicatesDeliveredOnce: every packet duplicated, each invalidation
// reaches each Handler once. Catches: a missing dedupe.
func TestDuplicatesDeliveredOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := gossiptest.New(7)
		nodes := startFake(t, nw, 3, nil)
		nw.SetDuplicate(1)
		nw.SetDelay(0, 5*time.Millisecond)
		for r := range 5 {
			if err := nodes[0].c.Publish(context.Background(), keys(fmt.Sprint(r), 20)); err != nil {
				t.Fatal(err)
			}
		}
		waitFake(t, 10*time.Second, "delivery", func() bool {
			return nodes[1].rec.distinct() == 100 && nodes[2].rec.distinct() == 100
		})
		time.Sleep(2 * time.Second) // retransmissions and push/pull run
		synctest.Wait()
		for _, tn := range nodes[1:] {
			if n := tn.rec.count(); n != 100 {
				t.Errorf("%d deliveries of 100 invalidations", n)
			}
			if tn.c.Stats().Duplicates == 0 {
				t.Error("no duplicate seen: the test did not exercise dedupe")
			}
		}
	})
}

// TestPublishAckedIsolated: one node isolated, PublishAcked fails with an
// *AckError naming exactly it. Catches: acks not awaited, wrong names.
func TestPublishAckedIsolated(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := gossiptest.New(3)
		nodes := startFake(t, nw, 4, nil)
		ctx := context.Background()
		if err := nodes[0].c.PublishAcked(ctx, keys("a", 30)); err != nil {
			t.Fatalf("healthy PublishAcked: %v", err)
		}
		nw.Isolate(fakeAddr(2))
		ctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
		defer cancel()
		err := nodes[0].c.PublishAcked(ctx, keys("b", 30))
		var ae *AckError
		if !errors.As(err, &ae) || !slices.Equal(ae.Missing, []string{"n02"}) {
			t.Fatalf("PublishAcked = %v, want *AckError missing [n02]", err)
		}
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("AckError does not wrap the context error: %v", err)
		}
		for _, i := range []int{1, 3} {
			if nodes[i].rec.distinct() != 60 {
				t.Errorf("node %d has %d of 60", i, nodes[i].rec.distinct())
			}
		}
	})
}

// TestUnrepairable: with a tiny recent log, invalidations lost by everyone
// and evicted at the origin end in Handler.Unrepairable(origin) on the
// receivers, and the gap is no longer pending. Catches: gaps retried
// forever, Unrepairable never called.
func TestUnrepairable(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := gossiptest.New(5)
		nodes := startFake(t, nw, 3, func(i int, cfg *Config) { cfg.RecentLog = 4 })
		nw.SetDrop(1) // packets only: TCP repair still works
		if err := nodes[0].c.Publish(context.Background(), keys("x", 20)); err != nil {
			t.Fatal(err)
		}
		time.Sleep(50 * time.Millisecond)
		nw.SetDrop(0)
		waitFake(t, 10*time.Second, "unrepairable on both receivers", func() bool {
			return slices.Equal(nodes[1].rec.lostOrigins(), []string{"n00"}) &&
				slices.Equal(nodes[2].rec.lostOrigins(), []string{"n00"})
		})
		for _, tn := range nodes[1:] {
			if h := tn.c.Health(); h.PendingGaps != 0 {
				t.Errorf("PendingGaps = %d after giving up", h.PendingGaps)
			}
			if st := tn.c.Stats(); st.Unrepairable == 0 || st.Unrepairable > 16 {
				t.Errorf("Stats.Unrepairable = %d, want 1..16 (only the 4 newest can be resent)", st.Unrepairable)
			}
			if tn.rec.distinct() < 4 {
				t.Errorf("the 4 invalidations still in the origin's log were not repaired: %d", tn.rec.distinct())
			}
		}
		// New invalidations flow normally afterwards.
		if err := nodes[0].c.Publish(context.Background(), keys("y", 3)); err != nil {
			t.Fatal(err)
		}
		waitFake(t, 5*time.Second, "later invalidations", func() bool {
			return nodes[1].rec.distinct() >= 7 && nodes[2].rec.distinct() >= 7
		})
	})
}

// TestIsolatedHealth: an isolated node stops hearing its peers (OldestHeard
// stops advancing), loses them (AlivePeers 0, not Synced, but ExpectedPeers
// remembers them); after Heal the rejoin loop brings it back, Synced and
// fresh, and it catches up on what it missed. Catches: no rejoin, freshness
// taken from membership, Synced never reset, no anti-entropy after a heal.
func TestIsolatedHealth(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := gossiptest.New(9)
		nodes := startFake(t, nw, 3, nil)
		iso := nodes[2].c
		waitFake(t, 10*time.Second, "synced", func() bool { return iso.Health().Synced })
		// Idle but healthy: heartbeats keep OldestHeard advancing.
		h0 := iso.Health().OldestHeard
		time.Sleep(time.Second)
		synctest.Wait()
		if h1 := iso.Health().OldestHeard; h1.Sub(h0) < 500*time.Millisecond {
			t.Fatalf("OldestHeard moved %v in 1s of an idle healthy cluster", h1.Sub(h0))
		}
		nw.Isolate(fakeAddr(2))
		cut := time.Now()
		time.Sleep(time.Second)
		synctest.Wait()
		if h := iso.Health(); h.AlivePeers > 0 && h.OldestHeard.After(cut) {
			t.Fatalf("isolated node still hears its peers: %+v (cut at %v)", h, cut)
		}
		waitFake(t, 30*time.Second, "peers lost", func() bool { return iso.Health().AlivePeers == 0 })
		h := iso.Health()
		if h.Synced || h.ExpectedPeers != 2 || !h.OldestHeard.IsZero() {
			t.Fatalf("isolated health = %+v, want not synced, 2 expected, zero OldestHeard", h)
		}
		if err := nodes[0].c.Publish(context.Background(), keys("missed", 5)); err != nil {
			t.Fatal(err)
		}
		nw.Heal()
		healed := time.Now()
		took := waitFake(t, 30*time.Second, "rejoined, synced and fresh", func() bool {
			h := iso.Health()
			return h.AlivePeers == 2 && h.Synced && h.OldestHeard.After(healed)
		})
		t.Logf("rejoined and synced %v (fake) after Heal", took)
		if iso.Stats().Rejoins == 0 {
			t.Error("no rejoin counted")
		}
		waitFake(t, 10*time.Second, "missed invalidations", func() bool { return nodes[2].rec.distinct() == 5 })
	})
}

// TestRestartSameName: a node closed and restarted with the same name (new
// incarnation) rejoins and its new seqs (from 1 again) are delivered, not
// mistaken for duplicates of the old incarnation.
func TestRestartSameName(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := gossiptest.New(11)
		nodes := startFake(t, nw, 3, nil)
		if err := nodes[2].c.Publish(context.Background(), keys("old", 10)); err != nil {
			t.Fatal(err)
		}
		waitFake(t, 5*time.Second, "old incarnation", func() bool { return nodes[0].rec.distinct() == 10 })
		nodes[2].c.Close()
		time.Sleep(100 * time.Millisecond)
		time.Sleep(time.Millisecond) // distinct incarnation
		nodes[2] = startFakeNode(t, nw, 2, true, nil)
		waitFake(t, 10*time.Second, "rejoin", func() bool {
			return nodes[0].c.Health().AlivePeers == 2 && nodes[2].c.Health().AlivePeers == 2
		})
		if err := nodes[2].c.Publish(context.Background(), keys("new", 10)); err != nil {
			t.Fatal(err)
		}
		waitFake(t, 5*time.Second, "new incarnation", func() bool {
			return nodes[0].rec.count() == 20 && nodes[1].rec.count() == 20
		})
		nodes[0].rec.mu.Lock()
		last := nodes[0].rec.invs[19]
		nodes[0].rec.mu.Unlock()
		if last.Key != "new9" || last.Seq != 10 {
			t.Errorf("last delivery %+v, want new9 seq 10", last)
		}
	})
}

// TestRestartAfterClockStepBack: a node restarted with the same name after
// its wall clock stepped back gets a smaller incarnation than the one the
// cluster remembers. Its new stream must still be delivered: it learns the
// remembered incarnation at join (push/pull) and takes a newer one, and what
// it published before that (alone, before joining) is published again. Catches: peers dropping the
// whole new stream as an old incarnation's.
func TestRestartAfterClockStepBack(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := gossiptest.New(12)
		const before = 1_000_000
		nodes := startFake(t, nw, 3, func(i int, cfg *Config) {
			if i == 2 {
				cfg.incarnation = before
			}
		})
		if err := nodes[2].c.Publish(context.Background(), keys("old", 10)); err != nil {
			t.Fatal(err)
		}
		waitFake(t, 5*time.Second, "old incarnation", func() bool { return nodes[0].rec.distinct() == 10 })
		nodes[2].c.Close()
		time.Sleep(100 * time.Millisecond)
		// Started alone, it publishes before it learns anything; then joins.
		nodes[2] = startFakeNode(t, nw, 2, false, func(i int, cfg *Config) { cfg.incarnation = before - 1000 }) // clock 1 µs behind
		if err := nodes[2].c.Publish(context.Background(), keys("early", 5)); err != nil {
			t.Fatal(err)
		}
		if n, err := nodes[2].c.Join(context.Background(), []string{fakeAddr(0)}); n != 1 {
			t.Fatalf("Join = %d, %v", n, err)
		}
		waitFake(t, 10*time.Second, "rejoin", func() bool {
			return nodes[0].c.Health().AlivePeers == 2 && nodes[2].c.Health().AlivePeers == 2
		})
		if err := nodes[2].c.Publish(context.Background(), keys("new", 10)); err != nil {
			t.Fatal(err)
		}
		waitFake(t, 10*time.Second, "the new incarnation's invalidations everywhere", func() bool {
			return nodes[0].rec.distinct() == 25 && nodes[1].rec.distinct() == 25
		})
		if s := nodes[2].c.Stats(); s.Outgrown == 0 {
			t.Errorf("Stats.Outgrown = 0 after taking a newer incarnation")
		}
		nodes[2].c.mu.Lock()
		inc := nodes[2].c.inc
		nodes[2].c.mu.Unlock()
		if inc <= before {
			t.Errorf("incarnation %d, want past the remembered %d", inc, before)
		}
	})
}

// TestTailLossByHeartbeat: the last invalidations of a burst are lost by
// every receiver and gossip retransmission is exhausted; with push/pull
// effectively off, only the heartbeat's last seq reveals the loss, and
// repair fetches them. Catches: heartbeats not carrying or not checking the
// last seq.
func TestTailLossByHeartbeat(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := gossiptest.New(13)
		nodes := startFake(t, nw, 3, func(i int, cfg *Config) { cfg.PushPullInterval = time.Hour })
		nw.SetDrop(1)
		if err := nodes[0].c.Publish(context.Background(), keys("tail", 5)); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Second) // gossip retransmissions are spent meanwhile
		synctest.Wait()
		if nodes[1].rec.distinct() != 0 {
			t.Fatal("something got through a 100% drop")
		}
		nw.SetDrop(0)
		took := waitFake(t, time.Second, "tail repaired", func() bool {
			return nodes[1].rec.distinct() == 5 && nodes[2].rec.distinct() == 5
		})
		t.Logf("tail loss repaired %v (fake) after the network came back", took)
		if st := nodes[1].c.Stats(); st.GapsDetected < 5 || st.Repaired < 5 {
			t.Errorf("stats %+v: want >= 5 gaps detected and repaired", st)
		}
	})
}

// TestLateOriginTrackedFromStart: a node that starts after us and whose
// first invalidations we all lose is tracked from seq 1, so the loss is
// repaired rather than taken as "before first contact". Catches: first
// contact with a younger origin starting at its current seq.
func TestLateOriginTrackedFromStart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := gossiptest.New(17)
		nodes := startFake(t, nw, 2, nil)
		time.Sleep(time.Millisecond)
		nw.SetDrop(1) // packets only: the join's TCP state exchange works
		late := startFakeNode(t, nw, 2, true, nil)
		t.Cleanup(func() { late.c.Close() })
		if err := late.c.Publish(context.Background(), keys("early", 5)); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Second)
		synctest.Wait()
		nw.SetDrop(0)
		waitFake(t, 10*time.Second, "the late node's first invalidations", func() bool {
			return nodes[0].rec.distinct() == 5 && nodes[1].rec.distinct() == 5
		})
		for _, tn := range nodes {
			if l := tn.rec.lostOrigins(); len(l) > 0 {
				t.Errorf("Unrepairable(%v)", l)
			}
		}
	})
}

// TestResyncAndSilentSince: Resync exchanges state with every alive peer
// and reports who answered; SilentSince counts the alive peers that sent
// nothing of their own since a time. Catches: a Resync that reports success
// without asking everyone, or peers counted as speaking when only memberlist
// (not their stream) reached us.
func TestResyncAndSilentSince(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := gossiptest.New(13)
		nodes := startFake(t, nw, 3, nil)
		answered, asked, err := nodes[0].c.Resync(context.Background())
		if answered != 2 || asked != 2 || err != nil {
			t.Fatalf("Resync = %d of %d, %v; want 2 of 2", answered, asked, err)
		}
		waitFake(t, 5*time.Second, "both peers speaking", func() bool { return nodes[0].c.SilentSince(time.Now().Add(-time.Second)) == 0 })

		nw.Block(fakeAddr(1), fakeAddr(0)) // n01 goes silent toward n00, still alive through n02
		time.Sleep(time.Millisecond)       // past what it sent at this very instant
		mark := time.Now()
		time.Sleep(time.Second)
		synctest.Wait()
		if got := nodes[0].c.SilentSince(mark); got != 1 {
			t.Errorf("SilentSince = %d with n01's packets blocked, want 1", got)
		}
		nw.Unblock(fakeAddr(1), fakeAddr(0))
		waitFake(t, 5*time.Second, "n01 speaking again", func() bool { return nodes[0].c.SilentSince(mark) == 0 })
	})
}
