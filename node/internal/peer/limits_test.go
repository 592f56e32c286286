package peer

import (
	"io"
	"net"
	"testing"
	"time"
)

// closedByServer reports whether the server closes nc within watchdog.
func closedByServer(t *testing.T, nc net.Conn) bool {
	t.Helper()
	nc.SetReadDeadline(time.Now().Add(watchdog))
	_, err := nc.Read(make([]byte, 1))
	return err == io.EOF
}

// TestFirstFrameTimeout: a connection that sends nothing is closed after
// FirstFrameTimeout and counted. Catches: idle connections kept forever (20,000
// of them exhausted the file descriptors, issue 12).
func TestFirstFrameTimeout(t *testing.T) {
	srv := listen(t, ServerConfig{Handler: okHandler([]byte("v")), FirstFrameTimeout: 20 * time.Millisecond})
	nc, err := net.Dial("tcp", srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if !closedByServer(t, nc) {
		t.Fatal("an idle connection was not closed")
	}
	waitStats(t, srv, func(s ServerStats) bool { return s.IdleClosed == 1 }, "IdleClosed")
}

// TestMaxConnsEvictsIdleNotWorking: at MaxConns a new connection evicts the
// oldest one that has completed no request; a working connection (a peer's
// pooled one) survives any number of idle openers.
func TestMaxConnsEvictsIdleNotWorking(t *testing.T) {
	key := []byte("k")
	srv := listen(t, ServerConfig{Handler: okHandler([]byte("v")), SecretKey: key, MaxConns: 2})
	c := client(t, ClientConfig{SecretKey: key})
	if _, err := c.Fill(t.Context(), srv.Addr(), Request{Key: "a"}); err != nil {
		t.Fatal(err)
	}
	var idle []net.Conn
	for range 5 {
		nc, err := net.Dial("tcp", srv.Addr())
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		idle = append(idle, nc)
	}
	for _, nc := range idle[:len(idle)-1] {
		if !closedByServer(t, nc) {
			t.Fatal("an older idle connection was not evicted")
		}
	}
	waitStats(t, srv, func(s ServerStats) bool { return s.Evicted == 4 }, "Evicted")
	if r, err := c.Fill(t.Context(), srv.Addr(), Request{Key: "b"}); err != nil || r.Status != StatusOK {
		t.Fatalf("the working connection after the flood: %v %v", r, err)
	}
	if c.Stats().Dials != 1 {
		t.Fatalf("the working connection was evicted: %d dials", c.Stats().Dials)
	}
}
