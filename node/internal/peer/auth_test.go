package peer

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
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
		{name: "client with other key", serverKey: key, clientKey: other, wantStatus: StatusRefused, wantRefusedAu: 1},
		{name: "server without key", clientKey: key, wantErr: ErrAuth},
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
// answer (plaintext protocol).
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

// proxy forwards connections to upstream, records every frame each way, and
// lets mutate rewrite the server's frames. mutate runs on one goroutine per
// connection.
type proxy struct {
	ln     net.Listener
	wg     sync.WaitGroup
	mu     sync.Mutex
	conns  []net.Conn
	up     [][][]byte // per connection: client -> server frame bodies
	down   []byte     // every byte server -> client
	mutate func(body []byte) []byte
}

func startProxy(t *testing.T, upstream string, mutate func([]byte) []byte) *proxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if mutate == nil {
		mutate = func(b []byte) []byte { return b }
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
			i := len(p.up)
			p.up = append(p.up, nil)
			p.mu.Unlock()
			p.wg.Add(2)
			go func() {
				defer p.wg.Done()
				defer up.Close()
				for {
					b, err := readFrame(down, nil, 1<<24)
					if err != nil {
						return
					}
					p.mu.Lock()
					p.up[i] = append(p.up[i], bytes.Clone(b))
					p.mu.Unlock()
					if _, err := up.Write(append(binary.BigEndian.AppendUint32(nil, uint32(len(b))), b...)); err != nil {
						return
					}
				}
			}()
			go func() {
				defer p.wg.Done()
				defer down.Close()
				for {
					b, err := readFrame(up, nil, 1<<24)
					if err != nil {
						return
					}
					p.mu.Lock()
					p.down = append(p.down, b...)
					p.mu.Unlock()
					if len(b) > 1 && b[1] != typeHelloAck {
						b = p.mutate(bytes.Clone(b))
					}
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

func (p *proxy) captured() ([][][]byte, []byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	up := make([][][]byte, len(p.up))
	for i := range p.up {
		up[i] = append([][]byte(nil), p.up[i]...)
	}
	return up, bytes.Clone(p.down)
}

func TestTamperedResponse(t *testing.T) {
	key := []byte("cluster key")
	var first []byte
	var firstMu sync.Mutex
	tests := []struct {
		name    string
		key     []byte
		mutate  func([]byte) []byte
		wantErr error // nil: the tampering goes through undetected (control)
	}{
		{"ciphertext byte", key, func(b []byte) []byte { b[len(b)-gcmTag-2] ^= 1; return b }, ErrAuth},
		{"tag byte", key, func(b []byte) []byte { b[len(b)-1] ^= 1; return b }, ErrAuth},
		{"seq", key, func(b []byte) []byte { b[sealedHeader-1] ^= 2; return b }, ErrMalformed},
		{"truncated", key, func(b []byte) []byte { return b[:len(b)-1] }, ErrAuth},
		{"response from another connection", key, func(b []byte) []byte {
			// Answer each connection with the very first response seen: it
			// was sealed under another connection's key.
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
			if tt.name == "response from another connection" {
				if _, err := warm.Fill(t.Context(), p.ln.Addr().String(), Request{Key: "bob"}); err != nil {
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

// TestValuesNeverInClear: with a key, neither the requested key nor the
// value appears in the bytes on the wire, either way.
func TestValuesNeverInClear(t *testing.T) {
	secretValue := []byte("the-secret-value-of-alice")
	srv := listen(t, ServerConfig{Handler: okHandler(secretValue), SecretKey: []byte("k")})
	p := startProxy(t, srv.Addr(), nil)
	c := client(t, ClientConfig{SecretKey: []byte("k")})
	got, err := c.Fill(t.Context(), p.ln.Addr().String(), Request{Group: "users", Key: "user:alice"})
	if err != nil || !bytes.Equal(got.Value, secretValue) {
		t.Fatalf("fill through the proxy: %v %q", err, got.Value)
	}
	up, down := p.captured()
	var all []byte
	for _, f := range up[0] {
		all = append(all, f...)
	}
	for _, s := range []string{"user:alice", "users"} {
		if bytes.Contains(all, []byte(s)) {
			t.Errorf("%q travels in clear in the request", s)
		}
	}
	if bytes.Contains(down, secretValue) {
		t.Error("the value travels in clear in the response")
	}
}

// sendFrames writes frames on a new connection to addr and reads until the
// server closes it or answers n frames; it returns the frames answered.
func sendFrames(t *testing.T, addr string, frames [][]byte) int {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(watchdog))
	for _, b := range frames {
		if _, err := nc.Write(append(binary.BigEndian.AppendUint32(nil, uint32(len(b))), b...)); err != nil {
			break
		}
	}
	n := 0
	for {
		if _, err := readFrame(nc, nil, 1<<20); err != nil {
			return n
		}
		n++
	}
}

// TestReplayedFrameRefused captures a keyed connection (hello and one sealed
// request) and sends it again: to the same node, to another node with the
// same key, and (within one connection) the sealed frame twice. Every node
// refuses it and no handler runs again. Catches the 30 s replay window of the
// HMAC protocol, where a captured request was accepted by any node.
// Checked under CPU load (see the common brief) with
//
//	go test -race -count=50 -run 'TestReplayedFrameRefused|TestRedirectedConnectionRefused|TestKeyringRotation' ./node/internal/peer/
func TestReplayedFrameRefused(t *testing.T) {
	key := []byte("cluster key")
	ha, hb, hc := &countingHandler{}, &countingHandler{}, &countingHandler{}
	a := listen(t, ServerConfig{Handler: ha, SecretKey: key, Name: "a"})
	b := listen(t, ServerConfig{Handler: hb, SecretKey: key, Name: "b"})
	anon := listen(t, ServerConfig{Handler: hc, SecretKey: key}) // checks no name
	p := startProxy(t, a.Addr(), nil)
	c := client(t, ClientConfig{SecretKey: key, Target: func(string) string { return "a" }})
	if r, err := c.Fill(t.Context(), p.ln.Addr().String(), Request{Key: "k"}); err != nil || r.Status != StatusOK {
		t.Fatalf("the captured fill: %v %v", r, err)
	}
	up, _ := p.captured()
	conn := up[0] // hello, request 1
	if len(conn) != 2 || ha.calls.Load() != 1 {
		t.Fatalf("captured %d frames, %d calls; want 2 and 1", len(conn), ha.calls.Load())
	}

	for _, tt := range []struct {
		name   string
		srv    *Server
		h      *countingHandler
		frames [][]byte
		check  func(ServerStats) bool
	}{
		{"same node, new connection", a, ha, conn, func(s ServerStats) bool { return s.RefusedAuth == 1 }},
		{"another node", b, hb, conn, func(s ServerStats) bool { return s.RefusedTarget == 1 }},
		{"another node checking no name", anon, hc, conn, func(s ServerStats) bool { return s.RefusedAuth == 1 }},
	} {
		calls := tt.h.calls.Load()
		sendFrames(t, tt.srv.Addr(), tt.frames)
		if tt.h.calls.Load() != calls {
			t.Errorf("%s: the replayed request reached the handler", tt.name)
		}
		waitStats(t, tt.srv, tt.check, tt.name)
	}

	// Within one live connection: a fresh client's sealed request, sent twice
	// by a man in the middle.
	dup := startProxy(t, a.Addr(), nil)
	c2 := client(t, ClientConfig{SecretKey: key, Target: func(string) string { return "a" }})
	if _, err := c2.Fill(t.Context(), dup.ln.Addr().String(), Request{Key: "k"}); err != nil {
		t.Fatal(err)
	}
	// Replay on the proxy's upstream socket: the same connection the server
	// opened the session on.
	dup.mu.Lock()
	upConn := dup.conns[1]
	frame := dup.up[0][1]
	dup.mu.Unlock()
	calls := ha.calls.Load()
	upConn.Write(append(binary.BigEndian.AppendUint32(nil, uint32(len(frame))), frame...))
	waitStats(t, a, func(s ServerStats) bool { return s.RefusedReplay == 1 }, "frame replayed within its connection")
	if ha.calls.Load() != calls {
		t.Error("a frame replayed within its connection reached the handler")
	}
}

func waitStats(t *testing.T, s *Server, ok func(ServerStats) bool, what string) {
	t.Helper()
	deadline := time.Now().Add(watchdog)
	for !ok(s.Stats()) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: server stats %+v", what, s.Stats())
		}
		time.Sleep(time.Millisecond) // polling a counter the server's goroutine sets
	}
}

// TestRedirectedConnectionRefused: a client that means node "a" but reaches
// node "b" (a DNS or address mix-up, or an attacker) is refused by b.
func TestRedirectedConnectionRefused(t *testing.T) {
	key := []byte("cluster key")
	h := &countingHandler{}
	b := listen(t, ServerConfig{Handler: h, SecretKey: key, Name: "b"})
	c := client(t, ClientConfig{SecretKey: key, Target: func(string) string { return "a" }})
	r, err := c.Fill(t.Context(), b.Addr(), Request{Key: "k"})
	if err != nil || r.Status != StatusRefused {
		t.Fatalf("got %v %v; want Refused", r, err)
	}
	if b.Stats().RefusedTarget != 1 || h.calls.Load() != 0 {
		t.Fatalf("stats %+v calls %d", b.Stats(), h.calls.Load())
	}
}

// TestKeyringRotation: a server holding two keys serves clients of either;
// SetKeyring dropping one closes that key's connections and refuses it.
func TestKeyringRotation(t *testing.T) {
	old, cur := []byte("old key"), []byte("new key")
	h := &countingHandler{}
	srv := listen(t, ServerConfig{Handler: h, Keyring: [][]byte{old, cur}})
	cOld := client(t, ClientConfig{SecretKey: old})
	cNew := client(t, ClientConfig{Keyring: [][]byte{cur, old}})
	for _, c := range []*Client{cOld, cNew} {
		if r, err := c.Fill(t.Context(), srv.Addr(), Request{Key: "k"}); err != nil || r.Status != StatusOK {
			t.Fatalf("both keys accepted: %v %v", r, err)
		}
	}
	if err := srv.SetKeyring([][]byte{cur}); err != nil {
		t.Fatal(err)
	}
	r, err := cOld.Fill(t.Context(), srv.Addr(), Request{Key: "k"})
	if err == nil && r.Status == StatusOK {
		t.Fatal("a client of the removed key was still served")
	}
	if r, err := cNew.Fill(t.Context(), srv.Addr(), Request{Key: "k"}); err != nil || r.Status != StatusOK {
		t.Fatalf("the remaining key: %v %v", r, err)
	}
	if err := srv.SetKeyring(nil); err == nil {
		t.Error("a keyed server accepted an empty keyring")
	}
}
