package peer

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// countingHandler answers OK with the key as value and counts its calls.
type countingHandler struct{ calls atomic.Int64 }

func (h *countingHandler) Fill(ctx context.Context, req *Request) Response {
	h.calls.Add(1)
	return Response{Status: StatusOK, Version: 1, Value: []byte(req.Key)}
}

func TestAuthThroughClient(t *testing.T) {
	key, other := []byte("cluster key"), []byte("another key")
	tests := []struct {
		name          string
		serverKey     []byte
		clientKey     []byte
		isMember      func(string) bool
		wantStatus    Status // when no error is wanted
		wantErr       error
		wantCalls     int64
		wantRefusedAu uint64
		wantRefusedMe uint64
	}{
		{name: "same key", serverKey: key, clientKey: key, wantStatus: StatusOK, wantCalls: 1},
		{name: "client without key", serverKey: key, wantStatus: StatusRefused, wantRefusedAu: 1},
		{name: "client with other key", serverKey: key, clientKey: other, wantErr: ErrAuth, wantRefusedAu: 1},
		{name: "server without key", clientKey: key, wantErr: ErrAuth, wantCalls: 1},
		{name: "not a member", serverKey: key, clientKey: key, isMember: func(n string) bool { return n == "someone else" },
			wantStatus: StatusRefused, wantRefusedMe: 1},
		{name: "member", serverKey: key, clientKey: key, isMember: func(n string) bool { return n == "api-2" },
			wantStatus: StatusOK, wantCalls: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := &countingHandler{}
			srv := listen(t, ServerConfig{Handler: h, SecretKey: tt.serverKey, IsMember: tt.isMember})
			c := client(t, ClientConfig{Name: "api-2", SecretKey: tt.clientKey})
			got, err := c.Fill(t.Context(), srv.Addr(), Request{Key: "k"})
			switch {
			case tt.wantErr != nil:
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				if c.Stats().AuthErrors != 1 {
					t.Fatalf("client stats %+v: want 1 auth error", c.Stats())
				}
			case err != nil:
				t.Fatal(err)
			case got.Status != tt.wantStatus:
				t.Fatalf("status %v (%s), want %v", got.Status, got.Err, tt.wantStatus)
			}
			s := srv.Stats()
			if h.calls.Load() != tt.wantCalls || s.RefusedAuth != tt.wantRefusedAu || s.RefusedMember != tt.wantRefusedMe {
				t.Fatalf("handler calls %d, server %+v; want calls %d, refused auth %d member %d",
					h.calls.Load(), s, tt.wantCalls, tt.wantRefusedAu, tt.wantRefusedMe)
			}
		})
	}
}

// rawRoundTrip sends one request body on a fresh connection and decodes the
// answer.
func rawRoundTrip(t *testing.T, addr string, body []byte) Response {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(watchdog))
	frame := binary.BigEndian.AppendUint32(nil, uint32(len(body)))
	if _, err := nc.Write(append(frame, body...)); err != nil {
		t.Fatal(err)
	}
	b, err := readFrame(nc, nil, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	r, _, err := decodeResponse(b, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestForgedAndReplayedRequests(t *testing.T) {
	key := []byte("cluster key")
	h := &countingHandler{}
	srv := listen(t, ServerConfig{Handler: h, SecretKey: key, MaxSkew: 30 * time.Second})
	now := time.Now().UnixNano()
	req := Request{From: "a", Group: "g", Key: "k"}
	tampered := encReq(t, 1, now, Request{From: "a", Group: "g", Key: "public"}, key)
	i := bytes.Index(tampered, []byte("public"))
	copy(tampered[i:], "secret") // same length, MAC now wrong

	tests := []struct {
		name       string
		body       []byte
		wantStatus Status
		wantAuth   uint64
		wantReplay uint64
	}{
		{"valid", encReq(t, 1, now, req, key), StatusOK, 0, 0},
		{"wrong key", encReq(t, 1, now, req, []byte("guess")), StatusRefused, 1, 0},
		{"field changed after MAC", tampered, StatusRefused, 1, 0},
		{"no MAC", encReq(t, 1, now, req, nil), StatusRefused, 1, 0},
		{"old timestamp", encReq(t, 1, now-int64(time.Minute), req, key), StatusRefused, 0, 1},
		{"future timestamp", encReq(t, 1, now+int64(time.Minute), req, key), StatusRefused, 0, 1},
		{"zero timestamp", encReq(t, 1, 0, req, key), StatusRefused, 0, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before, calls := srv.Stats(), h.calls.Load()
			got := rawRoundTrip(t, srv.Addr(), tt.body)
			after := srv.Stats()
			if got.Status != tt.wantStatus {
				t.Fatalf("status %v (%s), want %v", got.Status, got.Err, tt.wantStatus)
			}
			if dAuth, dReplay := after.RefusedAuth-before.RefusedAuth, after.RefusedReplay-before.RefusedReplay; dAuth != tt.wantAuth || dReplay != tt.wantReplay {
				t.Fatalf("refused auth +%d replay +%d, want +%d +%d", dAuth, dReplay, tt.wantAuth, tt.wantReplay)
			}
			if wantCalls := int64(map[bool]int{true: 1}[tt.wantStatus == StatusOK]); h.calls.Load()-calls != wantCalls {
				t.Fatalf("handler called %d times, want %d", h.calls.Load()-calls, wantCalls)
			}
		})
	}
}

// proxy forwards connections to upstream and lets mutate rewrite every
// response frame body. mutate runs on one goroutine per connection.
type proxy struct {
	ln     net.Listener
	wg     sync.WaitGroup
	mu     sync.Mutex
	conns  []net.Conn
	mutate func(body []byte) []byte
}

func startProxy(t *testing.T, upstream string, mutate func([]byte) []byte) *proxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, mutate: mutate}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			down, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", upstream)
			if err != nil {
				down.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, down, up)
			p.mu.Unlock()
			p.wg.Add(2)
			go func() { defer p.wg.Done(); io.Copy(up, down); up.Close() }()
			go func() {
				defer p.wg.Done()
				defer down.Close()
				for {
					b, err := readFrame(up, nil, 1<<24)
					if err != nil {
						return
					}
					b = p.mutate(bytes.Clone(b))
					if _, err := down.Write(append(binary.BigEndian.AppendUint32(nil, uint32(len(b))), b...)); err != nil {
						return
					}
				}
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		p.mu.Lock()
		for _, c := range p.conns {
			c.Close()
		}
		p.mu.Unlock()
		p.wg.Wait()
	})
	return p
}

func TestTamperedResponse(t *testing.T) {
	key := []byte("cluster key")
	// Response body of an OK answer with a MAC: ... value, err(0x00), mac(32).
	lastValueByte := func(b []byte) int { return len(b) - macSize - 2 }
	var first []byte
	var firstMu sync.Mutex
	tests := []struct {
		name    string
		key     []byte
		mutate  func([]byte) []byte
		wantErr error // nil: the tampering goes through undetected (control)
	}{
		{"value byte", key, func(b []byte) []byte { b[lastValueByte(b)] ^= 1; return b }, ErrAuth},
		{"status", key, func(b []byte) []byte { b[1] = byte(StatusNotFound) | flagMAC; return b }, ErrAuth},
		{"mac byte", key, func(b []byte) []byte { b[len(b)-1] ^= 1; return b }, ErrAuth},
		{"mac stripped", key, func(b []byte) []byte { b[1] &^= flagMAC; return b[:len(b)-macSize] }, ErrAuth},
		{"response to another request", key, func(b []byte) []byte {
			// Every connection's first request has id 1: answer each with the
			// very first response seen, which the MAC binds to its request.
			firstMu.Lock()
			defer firstMu.Unlock()
			if first == nil {
				first = b
			}
			return bytes.Clone(first)
		}, ErrAuth},
		{"control: no key, value byte", nil, func(b []byte) []byte { b[len(b)-2] ^= 1; return b }, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := listen(t, ServerConfig{Handler: &countingHandler{}, SecretKey: tt.key})
			p := startProxy(t, srv.Addr(), tt.mutate)
			warm := client(t, ClientConfig{SecretKey: tt.key})
			c := client(t, ClientConfig{SecretKey: tt.key})
			if tt.name == "response to another request" {
				if _, err := warm.Fill(t.Context(), p.ln.Addr().String(), Request{Key: "alice"}); err != nil {
					t.Fatal(err)
				}
			}
			got, err := c.Fill(t.Context(), p.ln.Addr().String(), Request{Key: "bob"})
			if tt.wantErr == nil {
				if err != nil || string(got.Value) == "bob" {
					t.Fatalf("control: got %q, %v; the proxy should have changed the value undetected", got.Value, err)
				}
				return
			}
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("got %v %q, err %v; want %v", got.Status, got.Value, err, tt.wantErr)
			}
		})
	}
}
