package peer

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// watchdog bounds a test step that must not hang; it is a failure guard,
// never synchronisation.
const watchdog = 10 * time.Second

func listen(t *testing.T, cfg ServerConfig) *Server {
	t.Helper()
	s, err := Listen(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func client(t *testing.T, cfg ClientConfig) *Client {
	t.Helper()
	if cfg.Name == "" {
		cfg.Name = "tester"
	}
	c, err := NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func okHandler(value []byte) Handler {
	return HandlerFunc(func(ctx context.Context, req *Request) Response {
		return Response{Status: StatusOK, Version: 1, Value: value}
	})
}

func TestFillRoundTrip(t *testing.T) {
	kib := bytes.Repeat([]byte("x"), 1<<10)
	mib := bytes.Repeat([]byte("y"), 1<<20)
	answers := map[string]Response{
		"ok-0":     {Status: StatusOK, Version: 1, Value: []byte{}},
		"ok-1k":    {Status: StatusOK, Version: 2, Value: kib},
		"ok-1m":    {Status: StatusOK, Version: 3, Value: mib},
		"notfound": {Status: StatusNotFound, Version: 4, Value: []byte{}},
		"error":    {Status: StatusError, Value: []byte{}, Err: "db down"},
		"overload": {Status: StatusOverloaded, Value: []byte{}},
	}
	var last atomic.Pointer[Request]
	h := HandlerFunc(func(ctx context.Context, req *Request) Response {
		last.Store(req)
		return answers[req.Key]
	})
	for _, keyed := range []bool{false, true} {
		var key []byte
		if keyed {
			key = []byte("shared secret")
		}
		srv := listen(t, ServerConfig{Handler: h, SecretKey: key})
		c := client(t, ClientConfig{Name: "api-1", SecretKey: key})
		for name, want := range answers {
			t.Run(name+map[bool]string{false: "/plain", true: "/keyed"}[keyed], func(t *testing.T) {
				got, err := c.Fill(t.Context(), srv.Addr(), Request{Group: "g", Key: name, From: "ignored", Floor: 0})
				if err != nil {
					t.Fatal(err)
				}
				if got.Status != want.Status || got.Version != want.Version || got.Err != want.Err || !bytes.Equal(got.Value, want.Value) {
					t.Fatalf("got %v v%d %q len=%d, want %v v%d %q len=%d",
						got.Status, got.Version, got.Err, len(got.Value), want.Status, want.Version, want.Err, len(want.Value))
				}
				if r := last.Load(); r.Group != "g" || r.Key != name || r.From != "api-1" {
					t.Fatalf("handler saw %+v; want From to be the client's Name", r)
				}
			})
		}
	}
}

func TestValueOwnedByCaller(t *testing.T) {
	srv := listen(t, ServerConfig{Handler: &countingHandler{}})
	c := client(t, ClientConfig{})
	a, err := c.Fill(t.Context(), srv.Addr(), Request{Key: "first"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Fill(t.Context(), srv.Addr(), Request{Key: "other"}); err != nil {
		t.Fatal(err)
	}
	if string(a.Value) != "first" {
		t.Fatalf("first value changed to %q by the next fill on the same connection", a.Value)
	}
}

func TestKeepAlive(t *testing.T) {
	srv := listen(t, ServerConfig{Handler: okHandler([]byte("v"))})
	c := client(t, ClientConfig{})
	for range 100 {
		if _, err := c.Fill(t.Context(), srv.Addr(), Request{Key: "k"}); err != nil {
			t.Fatal(err)
		}
	}
	cs, ss := c.Stats(), srv.Stats()
	if cs.Dials != 1 || cs.Reused != 99 || cs.Fills != 100 || ss.Conns != 1 || ss.Requests != 100 {
		t.Fatalf("client %+v server %+v: want 1 dial, 99 reused, 1 server conn", cs, ss)
	}
}

func TestCloseIdle(t *testing.T) {
	srv := listen(t, ServerConfig{Handler: okHandler([]byte("v"))})
	c := client(t, ClientConfig{})
	for range 2 {
		if _, err := c.Fill(t.Context(), srv.Addr(), Request{}); err != nil {
			t.Fatal(err)
		}
		c.CloseIdle(srv.Addr())
	}
	c.mu.Lock()
	open := len(c.conns)
	c.mu.Unlock()
	if s := c.Stats(); s.Dials != 2 || s.Reused != 0 || open != 0 {
		t.Fatalf("stats %+v, %d open: want every idle connection closed and forgotten", s, open)
	}
}

func TestMaxIdle(t *testing.T) {
	release := make(chan struct{})
	started := make(chan struct{}, 3)
	h := HandlerFunc(func(ctx context.Context, req *Request) Response {
		started <- struct{}{}
		<-release
		return Response{Status: StatusOK, Value: []byte{}}
	})
	srv := listen(t, ServerConfig{Handler: h})
	c := client(t, ClientConfig{MaxIdle: 1})
	errs := make(chan error, 3)
	for range 3 {
		go func() { _, err := c.Fill(t.Context(), srv.Addr(), Request{}); errs <- err }()
	}
	for range 3 {
		<-started
	}
	close(release)
	for range 3 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	c.mu.Lock()
	idle, open := len(c.idle[srv.Addr()]), len(c.conns)
	c.mu.Unlock()
	if idle != 1 || open != 1 {
		t.Fatalf("after 3 concurrent fills: %d idle, %d open; want MaxIdle=1 kept and the rest closed", idle, open)
	}
}

func TestFloorNeverAnsweredBelow(t *testing.T) {
	srv := listen(t, ServerConfig{Handler: HandlerFunc(func(ctx context.Context, req *Request) Response {
		return Response{Status: StatusOK, Version: 3, Value: []byte("old")}
	})})
	c := client(t, ClientConfig{})
	tests := []struct {
		floor uint64
		want  Status
	}{{0, StatusOK}, {3, StatusOK}, {4, StatusBelowFloor}}
	for _, tt := range tests {
		got, err := c.Fill(t.Context(), srv.Addr(), Request{Key: "k", Floor: tt.floor})
		if err != nil {
			t.Fatal(err)
		}
		if got.Status != tt.want || (tt.want == StatusBelowFloor && len(got.Value) != 0) {
			t.Fatalf("floor %d: got %v %q, want %v", tt.floor, got.Status, got.Value, tt.want)
		}
	}
	// Each side enforces the floor on its own: the server...
	raw := rawRoundTrip(t, srv.Addr(), encReq(t, 1, 1, Request{Key: "k", Floor: 4}, nil))
	if raw.Status != StatusBelowFloor || len(raw.Value) != 0 {
		t.Fatalf("server answered %v %q below the floor", raw.Status, raw.Value)
	}
	// ...and the client, against an owner that answers OK below the floor.
	p := startProxy(t, srv.Addr(), func(b []byte) []byte { b[1] = byte(StatusOK); return b })
	got, err := c.Fill(t.Context(), p.ln.Addr().String(), Request{Key: "k", Floor: 4})
	if err != nil || got.Status != StatusBelowFloor {
		t.Fatalf("client accepted %v, %v below its floor", got.Status, err)
	}
}

func TestHandlerMisbehaves(t *testing.T) {
	tests := []struct {
		name    string
		h       HandlerFunc
		wantErr string
	}{
		{"panic", func(context.Context, *Request) Response { panic("boom") }, "panicked"},
		{"zero status", func(context.Context, *Request) Response { return Response{} }, "invalid"},
		{"value over MaxValue", func(context.Context, *Request) Response {
			return Response{Status: StatusOK, Value: make([]byte, 2048)}
		}, "MaxValue"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := listen(t, ServerConfig{Handler: tt.h, MaxValue: 1024})
			c := client(t, ClientConfig{})
			for range 2 { // the server keeps serving after it
				got, err := c.Fill(t.Context(), srv.Addr(), Request{})
				if err != nil {
					t.Fatal(err)
				}
				if got.Status != StatusError || !strings.Contains(got.Err, tt.wantErr) {
					t.Fatalf("got %v %q, want error containing %q", got.Status, got.Err, tt.wantErr)
				}
			}
			if s := srv.Stats(); s.Errors != 2 {
				t.Fatalf("server Errors = %d, want 2", s.Errors)
			}
		})
	}
}

func TestClientMaxValue(t *testing.T) {
	srv := listen(t, ServerConfig{Handler: okHandler(make([]byte, 2048))})
	c := client(t, ClientConfig{MaxValue: 1024})
	_, err := c.Fill(t.Context(), srv.Addr(), Request{})
	if !errors.Is(err, ErrMalformed) || c.Stats().DecodeErrors != 1 {
		t.Fatalf("err = %v, stats %+v; want a decode error for a value over the client's MaxValue", err, c.Stats())
	}
}

func TestStalePooledConnRetried(t *testing.T) {
	srv := listen(t, ServerConfig{Handler: okHandler([]byte("v1"))})
	addr := srv.Addr()
	c := client(t, ClientConfig{})
	if _, err := c.Fill(t.Context(), addr, Request{}); err != nil {
		t.Fatal(err)
	}
	srv.Close() // the pooled connection is now dead
	srv2, err := Listen(ServerConfig{Addr: addr, Handler: okHandler([]byte("v2"))})
	if err != nil {
		t.Skipf("cannot listen again on %s: %v", addr, err)
	}
	defer srv2.Close()
	got, err := c.Fill(t.Context(), addr, Request{})
	if err != nil || string(got.Value) != "v2" {
		t.Fatalf("got %q, %v; want v2 after one retry", got.Value, err)
	}
	if s := c.Stats(); s.Retries != 1 || s.Dials != 2 {
		t.Fatalf("stats %+v: want 1 retry, 2 dials", s)
	}
}

func TestConfigValidation(t *testing.T) {
	h := okHandler(nil)
	servers := []struct {
		cfg  ServerConfig
		want string
	}{
		{ServerConfig{}, "Handler is required"},
		{ServerConfig{Handler: h, MaxRequest: -1}, "MaxRequest"},
		{ServerConfig{Handler: h, MaxValue: -1}, "MaxValue"},
		{ServerConfig{Handler: h, Timeout: -1}, "Timeout"},
		{ServerConfig{Handler: h, MaxSkew: -1}, "MaxSkew"},
		{ServerConfig{Handler: h, Addr: "256.0.0.1:0"}, "listen"},
	}
	for _, tt := range servers {
		t.Run("server/"+tt.want, func(t *testing.T) {
			s, err := Listen(tt.cfg)
			if err == nil {
				s.Close()
			}
			if err == nil || !strings.HasPrefix(err.Error(), "peer: ") || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want one about %s", err, tt.want)
			}
		})
	}
	clients := []struct {
		cfg  ClientConfig
		want string
	}{
		{ClientConfig{}, "Name is required"},
		{ClientConfig{Name: "a", MaxIdle: -1}, "MaxIdle"},
		{ClientConfig{Name: "a", MaxValue: -1}, "MaxValue"},
		{ClientConfig{Name: "a", DialTimeout: -1}, "DialTimeout"},
	}
	for _, tt := range clients {
		t.Run("client/"+tt.want, func(t *testing.T) {
			if _, err := NewClient(tt.cfg); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want one about %s", err, tt.want)
			}
		})
	}
}

func TestCallerConfigNotRetained(t *testing.T) {
	key := []byte("secret")
	srv := listen(t, ServerConfig{Handler: okHandler([]byte("v")), SecretKey: key})
	c := client(t, ClientConfig{SecretKey: bytes.Clone(key)})
	key[0] = 'X' // the caller reuses its buffer
	if got, err := c.Fill(t.Context(), srv.Addr(), Request{}); err != nil || got.Status != StatusOK {
		t.Fatalf("got %v, %v: the server kept a reference to the caller's key slice", got.Status, err)
	}
}
