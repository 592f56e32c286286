package attack

import (
	"context"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/nearcache/nearcache/node"
)

// recConn records what a node writes on a fill connection.
type recConn struct {
	net.Conn
	mu  *sync.Mutex
	buf *[]byte
}

func (c *recConn) Write(b []byte) (int, error) {
	c.mu.Lock()
	*c.buf = append(*c.buf, b...)
	c.mu.Unlock()
	return c.Conn.Write(b)
}

// TestReplayedFillRefused is issue 12's fill-channel attack: a captured fill
// request was accepted by any node for 30 s (no nonce, the MAC did not cover
// the target), and the value travelled in clear. A 3-node keyed cluster's
// fills are captured off the wire (what n1 writes to its owners) and sent
// again, byte for byte, to every node: each refuses them (RefusedAuth on the
// node they were meant for, which picks a fresh nonce; RefusedTarget on the
// others) and none reaches a handler.
func TestReplayedFillRefused(t *testing.T) {
	src := newSource()
	for i := range 100 {
		src.put(fmt.Sprint("item-key-", i), "secret-value", 1)
	}
	var mu sync.Mutex
	captured := map[string]*[]byte{} // fill address -> bytes n1 wrote on its first connection there
	rec := func(c *node.Config) {
		if c.Name != "n1" {
			return
		}
		c.FillDial = func(ctx context.Context, addr string) (net.Conn, error) {
			var d net.Dialer
			nc, err := d.DialContext(ctx, "tcp", addr)
			if err != nil {
				return nil, err
			}
			mu.Lock()
			defer mu.Unlock()
			if captured[addr] != nil {
				return nc, nil
			}
			buf := new([]byte)
			captured[addr] = buf
			return &recConn{Conn: nc, mu: &mu, buf: buf}, nil
		}
	}
	ms := startCluster(t, 3, opts{keys: [][]byte{key32(3)}, src: src, mod: rec})
	for i := range 100 {
		if _, err := ms[1].g.Get(t.Context(), fmt.Sprint("item-key-", i)); err != nil {
			t.Fatal(err)
		}
	}
	mu.Lock()
	conns := map[string][]byte{}
	for addr, b := range captured {
		conns[addr] = append([]byte(nil), (*b)...)
	}
	mu.Unlock()
	if len(conns) == 0 {
		t.Fatal("n1 filled from no owner")
	}
	for addr, wire := range conns {
		if containsAny(wire, "secret-value", "item-key-") {
			t.Errorf("a fill to %s carries keys or values in clear", addr)
		}
		for _, m := range ms {
			before := m.n.Stats().FillServer
			nc, err := net.Dial("tcp", m.fill)
			if err != nil {
				t.Fatal(err)
			}
			nc.SetDeadline(time.Now().Add(5 * time.Second))
			nc.Write(wire)
			io.Copy(io.Discard, nc) // until the node closes it
			nc.Close()
			waitFor(t, 5*time.Second, "the refusal counted", func() bool {
				after := m.n.Stats().FillServer
				return after.RefusedAuth+after.RefusedTarget > before.RefusedAuth+before.RefusedTarget
			})
			after := m.n.Stats().FillServer
			if after.Requests != before.Requests {
				t.Errorf("fills captured on the way to %s, replayed to %s (%s): %d requests decoded, want 0",
					addr, m.n.Name(), m.fill, after.Requests-before.Requests)
			}
			want := "RefusedTarget"
			got := after.RefusedTarget - before.RefusedTarget
			if m.fill == addr {
				want, got = "RefusedAuth", after.RefusedAuth-before.RefusedAuth
			}
			if got != 1 {
				t.Errorf("replayed to %s: %s +%d, want +1 (stats %+v)", m.n.Name(), want, got, after)
			}
		}
	}
}

func containsAny(b []byte, subs ...string) bool {
	for _, s := range subs {
		for i := 0; i+len(s) <= len(b); i++ {
			if string(b[i:i+len(s)]) == s {
				return true
			}
		}
	}
	return false
}
