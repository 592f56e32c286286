package gossiptest

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"time"
)

// FillNetwork carries stream connections beside a [Network]'s memberlist
// transports, in memory and under the same partitions: for nearcache, the
// owner-fill channel (node.Config.FillListener and FillDial). No socket is
// opened and every wait is on a channel or a timer, so it works inside a
// testing/synctest bubble on the fake clock.
//
// Addresses are the ones the Network's rules match. Give a node's fill
// listener its Transport's address (as if the fill server listened on the
// same port number over TCP, beside memberlist), and give its dialer the same
// address as from: then Partition and Isolate cut the node's fills together
// with its gossip.
//
// # Rules
//
// A partition black-holes, as a cut cable or a dropping firewall does, and a
// heal restores what it held, as TCP's retransmissions would:
//
//   - A dial across a partition waits until the partition heals (re-checked
//     every [Resend]) or its ctx ends; then it fails, wrapping
//     [ErrPartitioned] and ctx.Err(). The peer client bounds it with its
//     DialTimeout and the caller's ctx.
//   - On an open connection whose two ends a partition separates, writes
//     still succeed but their bytes (and a Close's end of stream) are held
//     back; reads see only what arrived before, then block until their
//     deadline, a local Close or the heal, after which the held bytes arrive
//     in order.
//   - A dial to an address with no live listener fails at once with
//     [ErrRefused], as a reset would.
//
// Drop, duplicate, delay and [Network.Block] rules apply to packets only.
//
// # Connections
//
// Writes never block (the buffer is unbounded). A read after the other end
// closed returns the bytes it sent, then io.EOF; a write after it closed fails
// with an error matching syscall.EPIPE (what a client takes for a stale
// pooled connection); a read, write or Close after a local Close fails with
// an error matching net.ErrClosed. SetDeadline, SetReadDeadline and
// SetWriteDeadline are honoured (a late operation fails with
// os.ErrDeadlineExceeded) and wake a blocked read when they change.
//
// Every method is safe for concurrent use. A FillNetwork starts no goroutine.
type FillNetwork struct {
	n *Network

	// mu guards listeners: the live listeners by canonical address.
	mu        sync.Mutex
	listeners map[string]*fillListener
}

// Resend is how often a dial, or a read waiting for bytes held by a
// partition, checks whether the partition healed.
const Resend = 50 * time.Millisecond

// NewFillNetwork returns a FillNetwork obeying n's partitions.
func NewFillNetwork(n *Network) *FillNetwork {
	return &FillNetwork{n: n, listeners: make(map[string]*fillListener)}
}

// Listen returns a listener at the virtual address addr ("ip:port"). It fails
// if addr does not parse or another live listener of f has it; after Close
// the address can be taken again.
func (f *FillNetwork) Listen(addr string) (net.Listener, error) {
	canon, ip, port, err := parseAddr(addr)
	if err != nil {
		return nil, err
	}
	l := &fillListener{
		f:      f,
		addr:   canon,
		tcp:    &net.TCPAddr{IP: ip, Port: port},
		accept: make(chan net.Conn),
		done:   make(chan struct{}),
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.listeners[canon]; ok {
		return nil, fmt.Errorf("gossiptest: fill address %s already in use", canon)
	}
	f.listeners[canon] = l
	return l, nil
}

// Dialer returns a dial function for a node at the address from, matched
// against the Network's rules; it has the shape of the peer client's Dial.
func (f *FillNetwork) Dialer(from string) func(ctx context.Context, addr string) (net.Conn, error) {
	from = normalize(from)
	laddr := tcpAddr(from)
	return func(ctx context.Context, addr string) (net.Conn, error) { return f.dial(ctx, from, laddr, addr) }
}

func (f *FillNetwork) dial(ctx context.Context, from string, laddr net.Addr, addr string) (net.Conn, error) {
	to := normalize(addr)
	fail := func(err error) (net.Conn, error) {
		f.n.stats.refused.Add(1)
		return nil, &net.OpError{Op: "dial", Net: "tcp", Source: laddr, Addr: tcpAddr(to), Err: err}
	}
	if err := ctx.Err(); err != nil {
		return fail(err)
	}
	for !f.n.allowed(from, to) {
		t := time.NewTimer(Resend)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return fail(fmt.Errorf("%w: %w", ErrPartitioned, ctx.Err()))
		}
	}
	f.mu.Lock()
	l := f.listeners[to]
	f.mu.Unlock()
	if l == nil {
		return fail(ErrRefused)
	}
	client, server := newFillPipe(f.n, from, laddr, to, l.tcp)
	select {
	case l.accept <- server:
		f.n.stats.opened.Add(1)
		return client, nil
	case <-l.done:
		return fail(ErrRefused)
	case <-ctx.Done():
		return fail(ctx.Err())
	}
}

// tcpAddr returns addr as a *net.TCPAddr, or nil if it does not parse.
func tcpAddr(addr string) net.Addr {
	_, ip, port, err := parseAddr(addr)
	if err != nil {
		return nil
	}
	return &net.TCPAddr{IP: ip, Port: port}
}

// fillListener is one FillNetwork listener; a dial hands it the server end.
type fillListener struct {
	f      *FillNetwork
	addr   string
	tcp    *net.TCPAddr
	accept chan net.Conn // unbuffered: a dial waits for Accept
	done   chan struct{} // closed by Close
	once   sync.Once
}

func (l *fillListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.accept:
		return c, nil
	case <-l.done:
		return nil, &net.OpError{Op: "accept", Net: "tcp", Addr: l.tcp, Err: net.ErrClosed}
	}
}

// Close stops accepting (dials waiting for Accept are refused) and frees the
// address; connections already accepted stay open.
func (l *fillListener) Close() error {
	closed := false
	l.once.Do(func() {
		closed = true
		close(l.done)
		l.f.mu.Lock()
		if l.f.listeners[l.addr] == l {
			delete(l.f.listeners, l.addr)
		}
		l.f.mu.Unlock()
	})
	if !closed {
		return &net.OpError{Op: "close", Net: "tcp", Addr: l.tcp, Err: net.ErrClosed}
	}
	return nil
}

func (l *fillListener) Addr() net.Addr { return l.tcp }

// fillPipe is one connection: two ends, end 0 the dialer's and end 1 the
// listener's, and the bytes on their way between them.
type fillPipe struct {
	n     *Network
	addrs [2]string // canonical addresses of the ends, for the partition rule

	// mu guards everything below.
	mu     sync.Mutex
	wake   chan struct{} // closed and replaced at every change, to wake waiting reads
	dir    [2]direction  // dir[i]: the bytes on their way to end i
	closed [2]bool
	rdl    [2]time.Time // read deadlines; zero = none
	wdl    [2]time.Time // write deadlines
}

// direction is one way of a connection.
type direction struct {
	buf     []byte // arrived: readable
	held    []byte // written across a partition: arrives when it heals
	eof     bool   // the writing end closed, and its end of stream arrived
	heldEOF bool   // it closed across a partition
}

func newFillPipe(n *Network, from string, laddr net.Addr, to string, raddr net.Addr) (client, server *fillConn) {
	p := &fillPipe{n: n, addrs: [2]string{from, to}, wake: make(chan struct{})}
	return &fillConn{p: p, i: 0, laddr: laddr, raddr: raddr}, &fillConn{p: p, i: 1, laddr: raddr, raddr: laddr}
}

// syncLocked reports whether the ends can reach each other now, and if so
// delivers what a partition held.
func (p *fillPipe) syncLocked() bool {
	if !p.n.allowed(p.addrs[0], p.addrs[1]) {
		return false
	}
	changed := false
	for i := range p.dir {
		d := &p.dir[i]
		if len(d.held) > 0 {
			if !p.closed[i] {
				d.buf = append(d.buf, d.held...)
			}
			d.held, changed = nil, true
		}
		if d.heldEOF {
			d.eof, d.heldEOF, changed = true, false, true
		}
	}
	if changed {
		p.broadcastLocked()
	}
	return true
}

func (p *fillPipe) broadcastLocked() {
	close(p.wake)
	p.wake = make(chan struct{})
}

// waitLocked releases mu until something changes, dl passes or, with poll,
// Resend passes (to re-check a partition).
func (p *fillPipe) waitLocked(dl time.Time, poll bool) {
	wake := p.wake
	p.mu.Unlock()
	var expired, resend <-chan time.Time
	var dt, rt *time.Timer
	if !dl.IsZero() {
		dt = time.NewTimer(time.Until(dl))
		expired = dt.C
	}
	if poll {
		rt = time.NewTimer(Resend)
		resend = rt.C
	}
	select {
	case <-wake:
	case <-expired:
	case <-resend:
	}
	if dt != nil {
		dt.Stop()
	}
	if rt != nil {
		rt.Stop()
	}
	p.mu.Lock()
}

func passed(dl time.Time) bool { return !dl.IsZero() && !time.Now().Before(dl) }

// fillConn is one end of a fillPipe.
type fillConn struct {
	p            *fillPipe
	i            int // this end reads p.dir[i] and writes p.dir[1-i]
	laddr, raddr net.Addr
}

func (c *fillConn) opErr(op string, err error) error {
	return &net.OpError{Op: op, Net: "tcp", Source: c.laddr, Addr: c.raddr, Err: err}
}

func (c *fillConn) Read(b []byte) (int, error) {
	p := c.p
	p.mu.Lock()
	defer p.mu.Unlock()
	for {
		p.syncLocked()
		d := &p.dir[c.i]
		switch {
		case p.closed[c.i]:
			return 0, c.opErr("read", net.ErrClosed)
		case len(b) == 0:
			return 0, nil
		case len(d.buf) > 0:
			n := copy(b, d.buf)
			d.buf = d.buf[n:]
			if len(d.buf) == 0 {
				d.buf = nil
			}
			return n, nil
		case d.eof:
			return 0, io.EOF
		case passed(p.rdl[c.i]):
			return 0, c.opErr("read", os.ErrDeadlineExceeded)
		}
		// After syncLocked, held bytes mean a partition: re-check it.
		p.waitLocked(p.rdl[c.i], len(d.held) > 0 || d.heldEOF)
	}
}

func (c *fillConn) Write(b []byte) (int, error) {
	p := c.p
	p.mu.Lock()
	defer p.mu.Unlock()
	ok := p.syncLocked()
	switch {
	case p.closed[c.i]:
		return 0, c.opErr("write", net.ErrClosed)
	case passed(p.wdl[c.i]):
		return 0, c.opErr("write", os.ErrDeadlineExceeded)
	case p.dir[c.i].eof: // the other end closed, and we know it
		return 0, c.opErr("write", os.NewSyscallError("write", syscall.EPIPE))
	}
	o := 1 - c.i
	d := &p.dir[o]
	switch {
	case !ok:
		d.held = append(d.held, b...)
	case !p.closed[o]:
		d.buf = append(d.buf, b...)
	}
	p.broadcastLocked()
	return len(b), nil
}

// Close ends this end: its unread bytes are dropped, and the other end reads
// io.EOF after what was sent (once a partition heals).
func (c *fillConn) Close() error {
	p := c.p
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed[c.i] {
		return c.opErr("close", net.ErrClosed)
	}
	ok := p.syncLocked()
	p.closed[c.i] = true
	p.dir[c.i] = direction{}
	if o := &p.dir[1-c.i]; ok {
		o.eof = true
	} else {
		o.heldEOF = true
	}
	p.broadcastLocked()
	return nil
}

func (c *fillConn) LocalAddr() net.Addr  { return c.laddr }
func (c *fillConn) RemoteAddr() net.Addr { return c.raddr }

func (c *fillConn) SetDeadline(t time.Time) error {
	return c.setDeadline(t, true, true)
}

func (c *fillConn) SetReadDeadline(t time.Time) error {
	return c.setDeadline(t, true, false)
}

func (c *fillConn) SetWriteDeadline(t time.Time) error {
	return c.setDeadline(t, false, true)
}

func (c *fillConn) setDeadline(t time.Time, read, write bool) error {
	p := c.p
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed[c.i] {
		return c.opErr("set deadline", net.ErrClosed)
	}
	if read {
		p.rdl[c.i] = t
	}
	if write {
		p.wdl[c.i] = t
	}
	p.broadcastLocked()
	return nil
}
