package gossiptest

import (
	"fmt"
	"io"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/hashicorp/memberlist"
)

// drainAfterShutdown must be called inside the bubble before any startNode. It
// registers a cleanup that runs after every node's Shutdown and lets fake time
// pass: memberlist.Shutdown does not wait for its goroutines (a probe may wait
// up to ProbeInterval for an ack timer, and a TCP fallback ping as long), and
// time stops once the bubble's function returns, so without this synctest
// reports them as deadlocked.
func drainAfterShutdown(t *testing.T) {
	t.Cleanup(func() {
		time.Sleep(10 * time.Second)
		synctest.Wait()
	})
}

// startNode creates a memberlist node on tr; Shutdown runs at cleanup.
func startNode(t *testing.T, name string, tr memberlist.NodeAwareTransport, d memberlist.Delegate) *memberlist.Memberlist {
	t.Helper()
	cfg := memberlist.DefaultLocalConfig()
	cfg.Name = name
	cfg.Transport = tr
	cfg.LogOutput = io.Discard
	cfg.Delegate = d
	m, err := memberlist.Create(cfg)
	if err != nil {
		t.Fatalf("memberlist.Create(%s): %v", name, err)
	}
	t.Cleanup(func() { _ = m.Shutdown() })
	return m
}

// aliveNames returns the names m believes alive (or suspect), sorted.
func aliveNames(m *memberlist.Memberlist) []string {
	var names []string
	for _, n := range m.Members() {
		names = append(names, n.Name)
	}
	slices.Sort(names)
	return names
}

// waitView advances fake time in 100 ms steps until every node in ms sees
// exactly want, or fails after limit.
func waitView(t *testing.T, limit time.Duration, want []string, ms ...*memberlist.Memberlist) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		ok := true
		for _, m := range ms {
			if !slices.Equal(aliveNames(m), want) {
				ok = false
			}
		}
		if ok {
			return time.Since(start)
		}
		if time.Since(start) > limit {
			for _, m := range ms {
				t.Errorf("%s sees %v, want %v", m.LocalNode().Name, aliveNames(m), want)
			}
			t.Fatalf("no agreement after %v of fake time", limit)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestMemberlistIsolateAndHeal runs a real 3-node memberlist cluster on the
// in-memory network inside a synctest bubble.
func TestMemberlistIsolateAndHeal(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		drainAfterShutdown(t)
		n := New(1)
		var ms []*memberlist.Memberlist
		for i, addr := range []string{addrA, addrB, addrC} {
			ms = append(ms, startNode(t, fmt.Sprintf("n%d", i), newTransport(t, n, addr), nil))
		}
		a, b, c := ms[0], ms[1], ms[2]
		if _, err := b.Join([]string{addrA}); err != nil {
			t.Fatalf("b.Join: %v", err)
		}
		if _, err := c.Join([]string{addrA}); err != nil {
			t.Fatalf("c.Join: %v", err)
		}
		all := []string{"n0", "n1", "n2"}
		waitView(t, 10*time.Second, all, a, b, c)

		n.Isolate(addrC)
		d := waitView(t, 2*time.Minute, []string{"n0", "n1"}, a, b)
		waitView(t, 2*time.Minute, []string{"n2"}, c)
		t.Logf("isolated node declared dead after %v of fake time", d)
		if st := n.Stats(); st.PacketsDropped == 0 || st.StreamsRefused == 0 {
			t.Errorf("Stats() = %+v: isolation should have dropped packets and refused TCP fallback probes", st)
		}

		n.Heal()
		if _, err := c.Join([]string{addrA}); err != nil {
			t.Fatalf("c.Join after Heal: %v", err)
		}
		waitView(t, time.Minute, all, a, b, c)
		for _, m := range ms {
			if err := m.Shutdown(); err != nil {
				t.Errorf("Shutdown: %v", err)
			}
		}
	})
}

// recorder is a memberlist.Delegate that records user messages.
type recorder struct{ msgs chan string }

func (r *recorder) NodeMeta(int) []byte { return nil }
func (r *recorder) NotifyMsg(b []byte) {
	select {
	case r.msgs <- string(b): // string() copies: memberlist reuses b
	default:
	}
}
func (r *recorder) GetBroadcasts(int, int) [][]byte { return nil }
func (r *recorder) LocalState(bool) []byte          { return nil }
func (r *recorder) MergeRemoteState([]byte, bool)   {}

// TestMemberlistUserMessages checks that packet faults reach SendBestEffort
// traffic in memory.
func TestMemberlistUserMessages(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		drainAfterShutdown(t)
		n := New(1)
		rec := &recorder{msgs: make(chan string, 100)}
		a := startNode(t, "a", newTransport(t, n, addrA), nil)
		b := startNode(t, "b", newTransport(t, n, addrB), rec)
		if _, err := a.Join([]string{addrB}); err != nil {
			t.Fatal(err)
		}
		waitView(t, 10*time.Second, []string{"a", "b"}, a, b)
		target := b.LocalNode()

		n.SetDrop(1)
		for i := range 10 {
			if err := a.SendBestEffort(target, fmt.Appendf(nil, "lost-%d", i)); err != nil {
				t.Fatal(err)
			}
		}
		time.Sleep(time.Second)
		synctest.Wait()
		if len(rec.msgs) != 0 {
			t.Fatalf("%d messages arrived with drop p=1", len(rec.msgs))
		}

		n.SetDrop(0)
		n.SetDelay(50*time.Millisecond, 50*time.Millisecond)
		if err := a.SendBestEffort(target, []byte("kept")); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if len(rec.msgs) != 0 {
			t.Fatal("message arrived before its 50ms delay")
		}
		time.Sleep(50 * time.Millisecond)
		synctest.Wait()
		if got := <-rec.msgs; got != "kept" {
			t.Errorf("received %q, want kept", got)
		}
	})
}
