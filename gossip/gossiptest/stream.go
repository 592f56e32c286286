package gossiptest

import (
	"fmt"
	"net"
	"os"
	"time"

	"github.com/hashicorp/memberlist"
)

// conn is one tracked end of a stream. Closing it removes it from the
// network; a partition or a Shutdown closes it.
type conn struct {
	net.Conn
	n      *Network
	local  string // canonical address of the end's owner
	remote string // canonical address of the peer
	owner  *Transport
	peer   *Transport // nil for a wrapped dial
	laddr  net.Addr   // nil: the inner conn's
	raddr  net.Addr
}

func (c *conn) Close() error {
	c.n.mu.Lock()
	delete(c.n.conns, c)
	c.n.mu.Unlock()
	return c.Conn.Close()
}

func (c *conn) LocalAddr() net.Addr {
	if c.laddr != nil {
		return c.laddr
	}
	return c.Conn.LocalAddr()
}

func (c *conn) RemoteAddr() net.Addr {
	if c.raddr != nil {
		return c.raddr
	}
	return c.Conn.RemoteAddr()
}

// DialTimeout opens a stream to addr; see DialAddressTimeout.
func (t *Transport) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	return t.DialAddressTimeout(memberlist.Address{Addr: addr}, timeout)
}

// DialAddressTimeout opens a reliable stream to a.Addr. It fails at once with
// ErrPartitioned across a partition, with ErrRefused if nobody listens there,
// and with ErrClosed after Shutdown. In memory it waits for the peer to accept
// (read its StreamCh) for at most timeout (zero: no limit), and gives up when
// either transport shuts down; a timeout wraps os.ErrDeadlineExceeded.
func (t *Transport) DialAddressTimeout(a memberlist.Address, timeout time.Duration) (net.Conn, error) {
	to := normalize(a.Addr)
	if t.isClosed() {
		return nil, t.dialErr(to, ErrClosed)
	}
	if t.inner != nil {
		return t.dialWrapped(a, to, timeout)
	}

	n := t.net
	n.mu.Lock()
	if !n.allowedLocked(t.addr, to) {
		n.mu.Unlock()
		return nil, t.dialErr(to, ErrPartitioned)
	}
	dst := n.transports[to]
	if dst == nil {
		n.mu.Unlock()
		return nil, t.dialErr(to, ErrRefused)
	}
	p1, p2 := net.Pipe()
	client := &conn{Conn: p1, n: n, local: t.addr, remote: to, owner: t, peer: dst, laddr: t.tcpAddr, raddr: dst.tcpAddr}
	server := &conn{Conn: p2, n: n, local: to, remote: t.addr, owner: dst, peer: t, laddr: dst.tcpAddr, raddr: t.tcpAddr}
	n.conns[client] = struct{}{}
	n.conns[server] = struct{}{}
	n.mu.Unlock()

	fail := func(err error) (net.Conn, error) {
		_ = client.Close()
		_ = server.Close()
		return nil, t.dialErr(to, err)
	}
	var expired <-chan time.Time
	if timeout > 0 {
		tm := time.NewTimer(timeout)
		defer tm.Stop()
		expired = tm.C
	}
	select {
	case dst.streamCh <- server:
	case <-expired:
		return fail(os.ErrDeadlineExceeded)
	case <-dst.done:
		return fail(ErrRefused)
	case <-t.done:
		return fail(ErrClosed)
	}
	// The accept may have raced with a Shutdown or a Partition: re-check, so
	// no stream crosses a partition or outlives a transport.
	switch {
	case t.isClosed():
		return fail(ErrClosed)
	case dst.isClosed():
		return fail(ErrRefused)
	case !n.allowed(t.addr, to):
		return fail(ErrPartitioned)
	}
	n.stats.opened.Add(1)
	return client, nil
}

// dialWrapped dials through the inner transport and tracks the connection so
// a partition or Shutdown closes it.
func (t *Transport) dialWrapped(a memberlist.Address, to string, timeout time.Duration) (net.Conn, error) {
	if !t.net.allowed(t.addr, to) {
		return nil, t.dialErr(to, ErrPartitioned)
	}
	inner, err := t.inner.DialAddressTimeout(a, timeout)
	if err != nil {
		t.net.stats.refused.Add(1)
		return nil, fmt.Errorf("gossiptest: dial %s from %s: %w", to, t.addr, err)
	}
	c := &conn{Conn: inner, n: t.net, local: t.addr, remote: to, owner: t}
	n := t.net
	n.mu.Lock()
	ok := n.allowedLocked(t.addr, to)
	if ok {
		n.conns[c] = struct{}{}
	}
	n.mu.Unlock()
	if !ok {
		_ = inner.Close()
		return nil, t.dialErr(to, ErrPartitioned)
	}
	if t.isClosed() { // Shutdown ran while we dialed and missed c
		_ = c.Close()
		return nil, t.dialErr(to, ErrClosed)
	}
	n.stats.opened.Add(1)
	return c, nil
}

func (t *Transport) dialErr(to string, err error) error {
	t.net.stats.refused.Add(1)
	return fmt.Errorf("gossiptest: dial %s from %s: %w", to, t.addr, err)
}
