package peer

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"
)

// blockingHandler signals started, then blocks until its ctx ends or
// release closes, and reports the ctx error it saw.
type blockingHandler struct {
	started chan struct{}
	release chan struct{}
	sawErr  chan error
}

func newBlocking() *blockingHandler {
	return &blockingHandler{started: make(chan struct{}, 16), release: make(chan struct{}), sawErr: make(chan error, 16)}
}

func (h *blockingHandler) Fill(ctx context.Context, req *Request) Response {
	h.started <- struct{}{}
	select {
	case <-ctx.Done():
		h.sawErr <- ctx.Err()
	case <-h.release:
		h.sawErr <- nil
	}
	return Response{Status: StatusOK, Value: []byte("late")}
}

func fillAsync(c *Client, ctx context.Context, addr string) <-chan error {
	done := make(chan error, 1)
	go func() { _, err := c.Fill(ctx, addr, Request{Key: "k"}); done <- err }()
	return done
}

func waitErr(t *testing.T, done <-chan error) error {
	t.Helper()
	select {
	case err := <-done:
		return err
	case <-time.After(watchdog):
		t.Fatal("Fill did not return")
		return nil
	}
}

func TestFillHonoursCtx(t *testing.T) {
	tests := []struct {
		name    string
		ctx     func(parent context.Context) (context.Context, context.CancelFunc)
		cancel  bool // cancel once the handler runs (a ctx with no deadline)
		wantErr error
	}{
		{"deadline", func(p context.Context) (context.Context, context.CancelFunc) {
			return context.WithTimeout(p, 50*time.Millisecond)
		}, false, context.DeadlineExceeded},
		{"cancel", context.WithCancel, true, context.Canceled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newBlocking()
			srv := listen(t, ServerConfig{Handler: h, Timeout: time.Minute})
			c := client(t, ClientConfig{})
			ctx, cancel := tt.ctx(t.Context())
			defer cancel()
			done := fillAsync(c, ctx, srv.Addr())
			<-h.started
			if tt.cancel {
				cancel()
			}
			// The server's Timeout is a minute away: only ctx can end this.
			if err := waitErr(t, done); !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if s := c.Stats(); s.TimeoutErrors != 1 {
				t.Fatalf("stats %+v: want 1 timeout error", s)
			}
			close(h.release)
			// The broken connection was dropped; the next fill dials anew.
			if _, err := c.Fill(t.Context(), srv.Addr(), Request{}); err != nil {
				t.Fatal(err)
			}
			if s := c.Stats(); s.Dials != 2 {
				t.Fatalf("stats %+v: want a second dial after the abandoned connection", s)
			}
		})
	}
}

func TestFillCtxAlreadyDone(t *testing.T) {
	c := client(t, ClientConfig{})
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := c.Fill(ctx, "127.0.0.1:1", Request{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if c.Stats().Dials != 0 {
		t.Fatal("dialed for a done ctx")
	}
}

func TestDialError(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nobody listens there now
	c := client(t, ClientConfig{})
	if _, err := c.Fill(t.Context(), addr, Request{}); err == nil {
		t.Fatal("want a dial error")
	}
	if s := c.Stats(); s.DialErrors != 1 {
		t.Fatalf("stats %+v: want 1 dial error", s)
	}
}

func TestHandlerTimeout(t *testing.T) {
	h := newBlocking()
	srv := listen(t, ServerConfig{Handler: h, Timeout: 20 * time.Millisecond})
	c := client(t, ClientConfig{})
	got, err := c.Fill(t.Context(), srv.Addr(), Request{})
	if err != nil {
		t.Fatal(err)
	}
	if e := <-h.sawErr; !errors.Is(e, context.DeadlineExceeded) {
		t.Fatalf("handler saw %v, want its ctx to hit the server's Timeout", e)
	}
	if got.Status != StatusOK { // the handler answered anyway; the answer is delivered
		t.Fatalf("status %v", got.Status)
	}
}

func TestServerCloseCancelsHandlers(t *testing.T) {
	h := newBlocking()
	srv, err := Listen(ServerConfig{Handler: h, Timeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	c := client(t, ClientConfig{})
	d1, d2 := fillAsync(c, t.Context(), srv.Addr()), fillAsync(c, t.Context(), srv.Addr())
	<-h.started
	<-h.started
	closed := make(chan error, 1)
	go func() { closed <- srv.Close() }()
	for range 2 {
		if e := <-h.sawErr; !errors.Is(e, context.Canceled) {
			t.Fatalf("handler saw %v, want its ctx cancelled by Close", e)
		}
	}
	if err := waitErr(t, closed); err != nil {
		t.Fatal(err)
	}
	for _, d := range []<-chan error{d1, d2} {
		if err := waitErr(t, d); err == nil {
			t.Fatal("a fill in flight during Close succeeded")
		}
	}
	if err := srv.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	// goleak (TestMain) checks that no server goroutine survived.
}

func TestClientCloseFailsInFlight(t *testing.T) {
	h := newBlocking()
	srv := listen(t, ServerConfig{Handler: h, Timeout: time.Minute})
	defer close(h.release)
	c, err := NewClient(ClientConfig{Name: "a"})
	if err != nil {
		t.Fatal(err)
	}
	done := fillAsync(c, t.Context(), srv.Addr())
	<-h.started
	c.Close()
	if err := waitErr(t, done); err == nil {
		t.Fatal("a fill in flight during Client.Close succeeded")
	}
	if _, err := c.Fill(t.Context(), srv.Addr(), Request{}); !errors.Is(err, ErrClosed) {
		t.Fatalf("Fill after Close: %v, want ErrClosed", err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
}
