package gossiptest

import (
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"testing/synctest"
	"time"
)

// dialAccepted dials to from src and accepts on dst, failing the test on error.
func dialAccepted(t *testing.T, src, dst *Transport) (client, server net.Conn) {
	t.Helper()
	accepted := make(chan net.Conn, 1)
	go func() { accepted <- <-dst.StreamCh() }()
	client, err := src.DialTimeout(dst.Addr(), time.Second)
	if err != nil {
		t.Fatalf("DialTimeout(%s): %v", dst.Addr(), err)
	}
	server = <-accepted
	return client, server
}

func TestStreamRoundTrip(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := New(1)
		a, b := newTransport(t, n, addrA), newTransport(t, n, addrB)
		n.SetDrop(1) // streams are reliable: packet faults do not touch them
		client, server := dialAccepted(t, a, b)
		defer client.Close()
		defer server.Close()
		go func() { _, _ = client.Write([]byte("ping")) }()
		buf := make([]byte, 4)
		if _, err := io.ReadFull(server, buf); err != nil || string(buf) != "ping" {
			t.Fatalf("server read %q, %v; want ping", buf, err)
		}
		if got := server.RemoteAddr().String(); got != addrA {
			t.Errorf("server RemoteAddr = %s, want %s", got, addrA)
		}
		if got := client.RemoteAddr().String(); got != addrB {
			t.Errorf("client RemoteAddr = %s, want %s", got, addrB)
		}
		if st := n.Stats(); st.StreamsOpened != 1 {
			t.Errorf("StreamsOpened = %d, want 1", st.StreamsOpened)
		}
	})
}

func TestDialFailures(t *testing.T) {
	tests := []struct {
		name    string
		timeout time.Duration
		act     func(n *Network, a, b *Transport) // runs while the dial waits
		want    error
		wantAt  time.Duration // fake time at which the dial returns
	}{
		{name: "no listener", timeout: time.Minute, want: ErrRefused},
		{
			name:    "not accepted before timeout",
			timeout: 3 * time.Second,
			act:     func(*Network, *Transport, *Transport) {},
			want:    os.ErrDeadlineExceeded,
			wantAt:  3 * time.Second,
		},
		{
			name:    "listener shuts down",
			timeout: time.Minute,
			act:     func(_ *Network, _, b *Transport) { _ = b.Shutdown() },
			want:    ErrRefused,
			wantAt:  time.Second,
		},
		{
			name:    "dialer shuts down",
			timeout: time.Minute,
			act:     func(_ *Network, a, _ *Transport) { _ = a.Shutdown() },
			want:    ErrClosed,
			wantAt:  time.Second,
		},
		{
			name:    "zero timeout waits for shutdown",
			timeout: 0,
			act:     func(_ *Network, _, b *Transport) { _ = b.Shutdown() },
			want:    ErrRefused,
			wantAt:  time.Second,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				n := New(1)
				a := newTransport(t, n, addrA)
				var b *Transport
				if tt.act != nil {
					b = newTransport(t, n, addrB)
					go func() {
						time.Sleep(time.Second)
						tt.act(n, a, b)
					}()
				}
				start := time.Now()
				c, err := a.DialTimeout(addrB, tt.timeout)
				if !errors.Is(err, tt.want) {
					t.Fatalf("DialTimeout = %v, %v; want %v", c, err, tt.want)
				}
				if d := time.Since(start); d != tt.wantAt {
					t.Errorf("DialTimeout returned after %v, want %v", d, tt.wantAt)
				}
				synctest.Wait()
				if st := n.Stats(); st.StreamsRefused != 1 || st.StreamsOpened != 0 {
					t.Errorf("Stats() = %+v, want 1 refused, 0 opened", st)
				}
				n.mu.Lock()
				open := len(n.conns)
				n.mu.Unlock()
				if open != 0 {
					t.Errorf("%d stream ends still tracked after a failed dial", open)
				}
			})
		})
	}
}

func TestDialAfterShutdown(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := New(1)
		a, b := newTransport(t, n, addrA), newTransport(t, n, addrB)
		_ = a.Shutdown()
		if _, err := a.DialTimeout(addrB, time.Second); !errors.Is(err, ErrClosed) {
			t.Errorf("dial from shut-down transport: err = %v, want ErrClosed", err)
		}
		_ = b.Shutdown()
		c := newTransport(t, n, addrC)
		if _, err := c.DialTimeout(addrB, time.Second); !errors.Is(err, ErrRefused) {
			t.Errorf("dial to shut-down transport: err = %v, want ErrRefused", err)
		}
	})
}

// readErr reads from c in the background and reports the error it ends with.
func readErr(c net.Conn) <-chan error {
	ch := make(chan error, 1)
	go func() {
		_, err := io.Copy(io.Discard, c)
		if err == nil {
			err = io.EOF
		}
		ch <- err
	}()
	return ch
}

func TestPartitionCutsOpenStreams(t *testing.T) {
	tests := []struct {
		name    string
		cut     func(n *Network, a, b *Transport)
		wantCut uint64
	}{
		{name: "isolate dialer", cut: func(n *Network, _, _ *Transport) { n.Isolate(addrA) }, wantCut: 2},
		{name: "isolate listener", cut: func(n *Network, _, _ *Transport) { n.Isolate(addrB) }, wantCut: 2},
		{name: "listener shuts down", cut: func(_ *Network, _, b *Transport) { _ = b.Shutdown() }},
		{name: "dialer shuts down", cut: func(_ *Network, a, _ *Transport) { _ = a.Shutdown() }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				n := New(1)
				a, b, c := newTransport(t, n, addrA), newTransport(t, n, addrB), newTransport(t, n, addrC)
				client, server := dialAccepted(t, a, b)
				other, otherServer := dialAccepted(t, c, c) // a self-stream nothing should cut
				clientDone, serverDone, otherDone := readErr(client), readErr(server), readErr(other)

				tt.cut(n, a, b)
				synctest.Wait()
				for name, ch := range map[string]<-chan error{"client": clientDone, "server": serverDone} {
					select {
					case err := <-ch:
						if err == nil {
							t.Errorf("%s end: read ended without error", name)
						}
					default:
						t.Errorf("%s end still open after the cut", name)
					}
				}
				select {
				case err := <-otherDone:
					t.Errorf("unrelated stream was cut: %v", err)
				default:
				}
				if st := n.Stats(); st.StreamsCut != tt.wantCut {
					t.Errorf("StreamsCut = %d, want %d", st.StreamsCut, tt.wantCut)
				}
				_ = other.Close()
				_ = otherServer.Close()
			})
		})
	}
}

func TestHealRestoresStreams(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := New(1)
		a, b := newTransport(t, n, addrA), newTransport(t, n, addrB)
		n.Isolate(addrB)
		if _, err := a.DialTimeout(addrB, time.Second); !errors.Is(err, ErrPartitioned) {
			t.Fatalf("dial across partition: err = %v, want ErrPartitioned", err)
		}
		n.Heal()
		client, server := dialAccepted(t, a, b)
		_ = client.Close()
		_ = server.Close()
	})
}
