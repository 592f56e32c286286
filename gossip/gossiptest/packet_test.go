package gossiptest

import (
	"encoding/binary"
	"errors"
	"os"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const (
	addrA = "127.0.0.1:7001"
	addrB = "127.0.0.1:7002"
	addrC = "127.0.0.1:7003"
)

// newTransport returns an in-memory transport shut down by t.Cleanup (inside
// the bubble when called inside one).
func newTransport(t *testing.T, n *Network, addr string) *Transport {
	t.Helper()
	tr, err := n.Transport(addr)
	if err != nil {
		t.Fatalf("Transport(%q): %v", addr, err)
	}
	t.Cleanup(func() { _ = tr.Shutdown() })
	return tr
}

func seqPacket(i int) []byte { return binary.BigEndian.AppendUint32(nil, uint32(i)) }

// sendSeq sends packets numbered 0..count-1 from src to dst.
func sendSeq(t *testing.T, src *Transport, dst string, count int) {
	t.Helper()
	for i := range count {
		if _, err := src.WriteTo(seqPacket(i), dst); err != nil {
			t.Fatalf("WriteTo(%d): %v", i, err)
		}
	}
}

// drain returns the sequence numbers queued on tr, without blocking.
func drain(tr *Transport) []int {
	var got []int
	for {
		select {
		case p := <-tr.PacketCh():
			got = append(got, int(binary.BigEndian.Uint32(p.Buf)))
		default:
			return got
		}
	}
}

func TestPacketRules(t *testing.T) {
	const sent = 200
	tests := []struct {
		name             string
		setup            func(n *Network)
		wait             time.Duration // fake time to let pass before draining
		wantMin, wantMax int           // packets received
		wantDup          bool          // some sequence number arrives twice
		wantReorder      bool          // arrival order differs from send order
	}{
		{name: "no faults", setup: func(*Network) {}, wantMin: sent, wantMax: sent},
		{name: "drop p=0", setup: func(n *Network) { n.SetDrop(0) }, wantMin: sent, wantMax: sent},
		{name: "drop p=1", setup: func(n *Network) { n.SetDrop(1) }, wantMin: 0, wantMax: 0},
		{name: "drop p=0.5", setup: func(n *Network) { n.SetDrop(0.5) }, wantMin: sent / 4, wantMax: sent * 3 / 4},
		{name: "drop p>1 clamps", setup: func(n *Network) { n.SetDrop(7) }, wantMin: 0, wantMax: 0},
		{name: "duplicate p=1", setup: func(n *Network) { n.SetDuplicate(1) }, wantMin: 2 * sent, wantMax: 2 * sent, wantDup: true},
		{name: "duplicate p=0.5", setup: func(n *Network) { n.SetDuplicate(0.5) }, wantMin: sent * 5 / 4, wantMax: sent * 7 / 4, wantDup: true},
		{
			name:    "delay reorders",
			setup:   func(n *Network) { n.SetDelay(time.Millisecond, 50*time.Millisecond) },
			wait:    50 * time.Millisecond,
			wantMin: sent, wantMax: sent, wantReorder: true,
		},
		{
			name:    "delay max<min is fixed",
			setup:   func(n *Network) { n.SetDelay(10*time.Millisecond, 0) },
			wait:    10 * time.Millisecond,
			wantMin: sent, wantMax: sent,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				n := New(1)
				a, b := newTransport(t, n, addrA), newTransport(t, n, addrB)
				tt.setup(n)
				sendSeq(t, a, addrB, sent)
				if tt.wait > 0 {
					if got := drain(b); len(got) != 0 {
						t.Fatalf("%d packets arrived before any delay elapsed", len(got))
					}
					time.Sleep(tt.wait)
					synctest.Wait()
				}
				got := drain(b)
				if len(got) < tt.wantMin || len(got) > tt.wantMax {
					t.Fatalf("received %d packets, want %d..%d", len(got), tt.wantMin, tt.wantMax)
				}
				sorted := slices.Sorted(slices.Values(got))
				if dup := len(slices.Compact(slices.Clone(sorted))) != len(sorted); dup != tt.wantDup {
					t.Errorf("duplicates = %v, want %v", dup, tt.wantDup)
				}
				if !tt.wantDup && !tt.wantReorder && !slices.IsSorted(got) {
					t.Errorf("packets reordered without delay: %v", got)
				}
				if tt.wantReorder && slices.IsSorted(got) {
					t.Errorf("delay in [1ms, 50ms] did not reorder %d packets", len(got))
				}
				st := n.Stats()
				if st.PacketsSent != sent || st.PacketsDelivered != uint64(len(got)) ||
					st.PacketsSent+st.PacketsDuplicated != st.PacketsDelivered+st.PacketsDropped {
					t.Errorf("Stats() = %+v, inconsistent with %d sent, %d received", st, sent, len(got))
				}
			})
		})
	}
}

func TestDelayIsHonoured(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := New(1)
		a, b := newTransport(t, n, addrA), newTransport(t, n, addrB)
		n.SetDelay(time.Second, time.Second)
		sendSeq(t, a, addrB, 3)
		time.Sleep(time.Second - time.Nanosecond)
		synctest.Wait()
		if got := drain(b); len(got) != 0 {
			t.Fatalf("received %v before the 1s delay", got)
		}
		time.Sleep(time.Nanosecond)
		synctest.Wait()
		if got := drain(b); !slices.Equal(got, []int{0, 1, 2}) {
			t.Fatalf("after 1s received %v, want [0 1 2]", got)
		}
	})
}

func TestSameSeedSameDecisions(t *testing.T) {
	run := func(seed int64) []int {
		var got []int
		synctest.Test(t, func(t *testing.T) {
			n := New(seed)
			a, b := newTransport(t, n, addrA), newTransport(t, n, addrB)
			n.SetDrop(0.3)
			n.SetDuplicate(0.3)
			n.SetDelay(0, 20*time.Millisecond)
			sendSeq(t, a, addrB, 100)
			time.Sleep(20 * time.Millisecond)
			synctest.Wait()
			got = drain(b)
		})
		return got
	}
	first, second, other := run(42), run(42), run(43)
	if !slices.Equal(first, second) {
		t.Errorf("seed 42 gave different runs:\n%v\n%v", first, second)
	}
	if slices.Equal(first, other) {
		t.Errorf("seeds 42 and 43 gave the same run %v", first)
	}
}

func TestPartitionPackets(t *testing.T) {
	type pair struct{ from, to string }
	tests := []struct {
		name      string
		partition func(n *Network)
		blocked   []pair // all other ordered pairs of a, b, c pass
	}{
		{name: "none", partition: func(*Network) {}},
		{
			name:      "isolate a",
			partition: func(n *Network) { n.Isolate(addrA) },
			blocked:   []pair{{addrA, addrB}, {addrB, addrA}, {addrA, addrC}, {addrC, addrA}},
		},
		{
			name:      "unlisted form their own group",
			partition: func(n *Network) { n.Partition([]string{addrA}, []string{addrB}) },
			blocked: []pair{
				{addrA, addrB}, {addrB, addrA}, {addrA, addrC}, {addrC, addrA}, {addrB, addrC}, {addrC, addrB},
			},
		},
		{
			name:      "two groups",
			partition: func(n *Network) { n.Partition([]string{addrA, addrB}, []string{addrC}) },
			blocked:   []pair{{addrA, addrC}, {addrC, addrA}, {addrB, addrC}, {addrC, addrB}},
		},
		{
			name:      "spelling normalized",
			partition: func(n *Network) { n.Isolate("127.0.0.1:07001") },
			blocked:   []pair{{addrA, addrB}, {addrB, addrA}, {addrA, addrC}, {addrC, addrA}},
		},
		{
			name: "heal",
			partition: func(n *Network) {
				n.Isolate(addrA)
				n.Heal()
			},
		},
		{
			name: "later partition replaces earlier",
			partition: func(n *Network) {
				n.Isolate(addrA)
				n.Isolate(addrC)
			},
			blocked: []pair{{addrA, addrC}, {addrC, addrA}, {addrB, addrC}, {addrC, addrB}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				n := New(1)
				trs := map[string]*Transport{}
				for _, a := range []string{addrA, addrB, addrC} {
					trs[a] = newTransport(t, n, a)
				}
				tt.partition(n)
				for from, src := range trs {
					for to, dst := range trs {
						if from == to {
							continue
						}
						sendSeq(t, src, to, 1)
						got := len(drain(dst))
						want := 1
						if slices.Contains(tt.blocked, pair{from, to}) {
							want = 0
						}
						if got != want {
							t.Errorf("%s -> %s: received %d packets, want %d", from, to, got, want)
						}
						// Nobody accepts, so a reachable peer makes the dial
						// wait for its timeout; a partition refuses at once.
						wantErr := os.ErrDeadlineExceeded
						if want == 0 {
							wantErr = ErrPartitioned
						}
						if _, err := src.DialTimeout(to, time.Second); !errors.Is(err, wantErr) {
							t.Errorf("DialTimeout %s -> %s: err = %v, want %v", from, to, err, wantErr)
						}
					}
				}
			})
		})
	}
}

func TestFullQueueDropsInsteadOfBlocking(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := New(1)
		a := newTransport(t, n, addrA)
		newTransport(t, n, addrB) // never read
		const sent = 10_000
		start := time.Now()
		sendSeq(t, a, addrB, sent) // a blocked send deadlocks the bubble: synctest fails the test
		if d := time.Since(start); d != 0 {
			t.Errorf("sending took %v of fake time, want 0", d)
		}
		st := n.Stats()
		if st.PacketsDelivered != queueLen || st.PacketsDropped != sent-queueLen {
			t.Errorf("Stats() = %+v, want %d delivered and %d dropped", st, queueLen, sent-queueLen)
		}
	})
}

func TestNoRouteDrops(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := New(1)
		a := newTransport(t, n, addrA)
		if _, err := a.WriteTo([]byte("x"), "127.0.0.1:9"); err != nil {
			t.Fatalf("WriteTo(no listener) = %v, want nil like UDP", err)
		}
		if st := n.Stats(); st.PacketsDropped != 1 {
			t.Errorf("PacketsDropped = %d, want 1", st.PacketsDropped)
		}
	})
}

func TestPacketFromIsSender(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := New(1)
		a, b := newTransport(t, n, addrA), newTransport(t, n, addrB)
		buf := []byte("hello")
		before := time.Now()
		if _, err := a.WriteTo(buf, addrB); err != nil {
			t.Fatal(err)
		}
		buf[0] = 'j' // the sender may reuse its buffer
		p := <-b.PacketCh()
		if p.From.String() != addrA || string(p.Buf) != "hello" || p.Timestamp.Before(before) {
			t.Errorf("packet = {From: %v, Buf: %q, Timestamp: %v}, want {%s, hello, >= %v}",
				p.From, p.Buf, p.Timestamp, addrA, before)
		}
		ip, port, err := b.FinalAdvertiseAddr("", 0)
		if err != nil || ip.String() != "127.0.0.1" || port != 7002 {
			t.Errorf("FinalAdvertiseAddr() = %v, %d, %v; want 127.0.0.1, 7002", ip, port, err)
		}
	})
}

func TestShutdownDiscardsDelayedPackets(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := New(1)
		a, b := newTransport(t, n, addrA), newTransport(t, n, addrB)
		n.SetDelay(time.Second, time.Second)
		sendSeq(t, a, addrB, 10)
		if err := b.Shutdown(); err != nil {
			t.Fatal(err)
		}
		if err := b.Shutdown(); err != nil {
			t.Fatalf("second Shutdown: %v", err)
		}
		time.Sleep(2 * time.Second)
		synctest.Wait()
		if got := drain(b); len(got) != 0 {
			t.Errorf("received %v after Shutdown", got)
		}
		sendSeq(t, a, addrB, 1) // no listener any more
		st := n.Stats()
		if st.PacketsDelivered != 0 || st.PacketsDropped != 11 {
			t.Errorf("Stats() = %+v, want 0 delivered, 11 dropped", st)
		}
		if _, err := b.WriteTo([]byte("x"), addrA); !errors.Is(err, ErrClosed) {
			t.Errorf("WriteTo after Shutdown: err = %v, want ErrClosed", err)
		}
		// The address is free again.
		n.SetDelay(0, 0)
		b2 := newTransport(t, n, addrB)
		sendSeq(t, a, addrB, 1)
		if got := drain(b2); len(got) != 1 {
			t.Errorf("new transport at %s received %v, want one packet", addrB, got)
		}
	})
}

func TestTransportAddr(t *testing.T) {
	tests := []struct {
		addr    string
		wantErr bool
	}{
		{addr: "127.0.0.1:7001"},
		{addr: "[::1]:7001"},
		{addr: "127.0.0.1", wantErr: true},
		{addr: "localhost:7001", wantErr: true},
		{addr: "127.0.0.1:0", wantErr: true},
		{addr: "127.0.0.1:70000", wantErr: true},
		{addr: "127.0.0.1:x", wantErr: true},
		{addr: "", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.addr, func(t *testing.T) {
			n := New(1)
			tr, err := n.Transport(tt.addr)
			if (err != nil) != tt.wantErr {
				t.Fatalf("Transport(%q) err = %v, wantErr %v", tt.addr, err, tt.wantErr)
			}
			if err != nil {
				return
			}
			defer tr.Shutdown()
			if _, err := n.Transport(tt.addr); err == nil {
				t.Errorf("second Transport(%q) succeeded, want address in use", tt.addr)
			}
		})
	}
}

func FuzzNormalize(f *testing.F) {
	for _, s := range []string{"127.0.0.1:7001", "[::1]:1", "127.0.0.1:07001", "::ffff:127.0.0.1:1", "x", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		canon, _, _, err := parseAddr(s)
		if err != nil {
			if normalize(s) != s {
				t.Fatalf("normalize(%q) = %q, want it unchanged", s, normalize(s))
			}
			return
		}
		if again, _, _, err := parseAddr(canon); err != nil || again != canon {
			t.Fatalf("parseAddr(%q) = %q, %v; want a fixed point", canon, again, err)
		}
	})
}

// TestBlockOneWay: Block drops packets one way only, leaves streams alone,
// and Unblock restores delivery. Catches: a block applied both ways, or to
// dials as well (a node could then not even ask the silent peer for state).
func TestBlockOneWay(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := New(1)
		a, b := newTransport(t, n, addrA), newTransport(t, n, addrB)
		n.Block(addrA, "127.0.0.1:07002") // spelling normalized
		sendSeq(t, a, addrB, 3)
		sendSeq(t, b, addrA, 3)
		if got := len(drain(b)); got != 0 {
			t.Errorf("a -> b blocked: b received %d packets", got)
		}
		if got := len(drain(a)); got != 3 {
			t.Errorf("b -> a open: a received %d packets, want 3", got)
		}
		if _, err := a.DialTimeout(addrB, time.Second); !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("DialTimeout a -> b under a packet block: err = %v, want the dial to proceed (timeout: nobody accepts)", err)
		}
		n.Unblock(addrA, addrB)
		sendSeq(t, a, addrB, 2)
		if got := len(drain(b)); got != 2 {
			t.Errorf("after Unblock: b received %d packets, want 2", got)
		}
	})
}
