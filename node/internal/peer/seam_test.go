package peer

import (
	"context"
	"errors"
	"net"
	"sync/atomic"
	"testing"
	"time"
)

// countingListener counts accepted connections and closes.
type countingListener struct {
	net.Listener
	accepted, closed atomic.Int64
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.accepted.Add(1)
	}
	return c, err
}

func (l *countingListener) Close() error {
	l.closed.Add(1)
	return l.Listener.Close()
}

// TestGivenListenerAndDial: a Server serves the Listener it is given (and
// closes it), and a Client dials through its Dial func with DialTimeout on
// the ctx. Fails if either seam falls back to its own TCP socket.
func TestGivenListenerAndDial(t *testing.T) {
	tcp, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := &countingListener{Listener: tcp}
	srv := listen(t, ServerConfig{Handler: okHandler([]byte("v")), Listener: ln, Addr: "127.0.0.1:1"})
	if srv.Addr() != tcp.Addr().String() {
		t.Fatalf("Addr() = %s, want the given listener's %s", srv.Addr(), tcp.Addr())
	}
	var dials atomic.Int64
	var sawDeadline atomic.Bool
	c := client(t, ClientConfig{DialTimeout: time.Minute, Dial: func(ctx context.Context, addr string) (net.Conn, error) {
		dials.Add(1)
		if d, ok := ctx.Deadline(); ok && time.Until(d) <= time.Minute {
			sawDeadline.Store(true)
		}
		var d net.Dialer
		return d.DialContext(ctx, "tcp", addr)
	}})
	for range 3 {
		if _, err := c.Fill(t.Context(), srv.Addr(), Request{Key: "k"}); err != nil {
			t.Fatal(err)
		}
	}
	if dials.Load() != 1 || ln.accepted.Load() != 1 {
		t.Errorf("%d dials through Dial, %d accepts on the given listener; want 1 and 1", dials.Load(), ln.accepted.Load())
	}
	if !sawDeadline.Load() {
		t.Error("Dial's ctx carried no DialTimeout deadline")
	}
	srv.Close()
	if ln.closed.Load() == 0 {
		t.Error("Server.Close did not close the given listener")
	}
}

// TestGivenListenerClosedOnBadConfig: a Listen that fails validation still
// closes the listener it was handed (the Server owned it).
func TestGivenListenerClosedOnBadConfig(t *testing.T) {
	tcp, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := &countingListener{Listener: tcp}
	if _, err := Listen(ServerConfig{Listener: ln}); err == nil {
		t.Fatal("Listen without a Handler succeeded")
	}
	if ln.closed.Load() != 1 {
		t.Error("the given listener was not closed")
	}
}

// TestDialTimeoutBoundsGivenDial: a Dial that never returns by itself is cut
// by DialTimeout and counted as a dial error, not a timeout of the caller.
func TestDialTimeoutBoundsGivenDial(t *testing.T) {
	c := client(t, ClientConfig{DialTimeout: 20 * time.Millisecond, Dial: func(ctx context.Context, addr string) (net.Conn, error) {
		<-ctx.Done()
		return nil, ctx.Err()
	}})
	_, err := c.Fill(t.Context(), "peer:1", Request{})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want the dial's deadline", err)
	}
	if s := c.Stats(); s.DialErrors != 1 || s.TimeoutErrors != 0 {
		t.Fatalf("stats %+v: want 1 dial error and no caller timeout", s)
	}
}

// TestCloseIdleExcept: the idle connections to addresses keep rejects are
// closed and forgotten; the others stay pooled and are reused.
func TestCloseIdleExcept(t *testing.T) {
	stay := listen(t, ServerConfig{Handler: okHandler([]byte("v"))})
	gone := listen(t, ServerConfig{Handler: okHandler([]byte("v"))})
	c := client(t, ClientConfig{})
	for _, s := range []*Server{stay, gone} {
		if _, err := c.Fill(t.Context(), s.Addr(), Request{}); err != nil {
			t.Fatal(err)
		}
	}
	c.CloseIdleExcept(func(addr string) bool { return addr == stay.Addr() })
	c.mu.Lock()
	open := len(c.conns)
	c.mu.Unlock()
	idleStay, idleGone := c.Idle(stay.Addr()), c.Idle(gone.Addr())
	if idleStay != 1 || idleGone != 0 || open != 1 {
		t.Fatalf("idle to kept %d, to dropped %d, open %d; want 1, 0, 1", idleStay, idleGone, open)
	}
	for _, s := range []*Server{stay, gone} {
		if _, err := c.Fill(t.Context(), s.Addr(), Request{}); err != nil {
			t.Fatal(err)
		}
	}
	if s := c.Stats(); s.Dials != 3 || s.Reused != 1 {
		t.Fatalf("stats %+v: want the kept connection reused and the dropped peer dialed anew", s)
	}
}
