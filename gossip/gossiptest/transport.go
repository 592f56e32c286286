package gossiptest

import (
	"bytes"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"
)

var _ memberlist.NodeAwareTransport = (*Transport)(nil)

// Transport is a memberlist.NodeAwareTransport on a Network: in memory (from
// [Network.Transport]) or wrapping a real transport (from [Network.Wrap]).
type Transport struct {
	net     *Network
	addr    string // canonical address, used for rule matching
	udpAddr net.Addr
	tcpAddr net.Addr
	inner   memberlist.NodeAwareTransport // nil in memory

	packetCh chan *memberlist.Packet
	streamCh chan net.Conn  // unbuffered: a dial (or a wrapped accept) waits for the reader
	done     chan struct{}  // closed by Shutdown
	stopFwd  chan struct{}  // Wrap: closed by Shutdown once inner is down
	fwd      sync.WaitGroup // Wrap: the packet and stream forwarders

	shutdownOnce sync.Once

	// fireMu is held while due deliveries run, so they run in deadline order.
	fireMu sync.Mutex

	// mu guards closed and the delay queue.
	mu     sync.Mutex
	closed bool
	// delayed holds the deliveries this transport owns: packets to it (in
	// memory) or from it (Wrap), earliest first; timer fires at the earliest.
	delayed delayQueue
	timer   *time.Timer
	seq     uint64
}

// Transport returns an in-memory transport listening on the virtual address
// addr ("127.0.0.1:7001"); no socket is opened. It fails if addr is not
// "ip:port" or another live in-memory transport of n already has it. After
// Shutdown the address can be taken again.
func (n *Network) Transport(addr string) (*Transport, error) {
	canon, ip, port, err := parseAddr(addr)
	if err != nil {
		return nil, err
	}
	t := &Transport{
		net:      n,
		addr:     canon,
		udpAddr:  &net.UDPAddr{IP: ip, Port: port},
		tcpAddr:  &net.TCPAddr{IP: ip, Port: port},
		packetCh: make(chan *memberlist.Packet, queueLen),
		streamCh: make(chan net.Conn),
		done:     make(chan struct{}),
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if _, ok := n.transports[canon]; ok {
		return nil, fmt.Errorf("gossiptest: address %s already in use", canon)
	}
	n.transports[canon] = t
	return t, nil
}

// Wrap returns a transport that applies n's rules to inner. addr is inner's
// advertise address (host:port), used to match rules; for a
// memberlist.NetTransport bound to 127.0.0.1 with port 0, that is
// "127.0.0.1:" + the port of GetAutoBindPort. Wrap starts two goroutines that
// forward inner's packets and accepted streams; Shutdown stops them after
// shutting inner down.
func (n *Network) Wrap(addr string, inner memberlist.NodeAwareTransport) *Transport {
	if inner == nil {
		panic("gossiptest: Wrap with nil inner transport")
	}
	t := &Transport{
		net:      n,
		addr:     normalize(addr),
		inner:    inner,
		packetCh: make(chan *memberlist.Packet, queueLen),
		done:     make(chan struct{}),
		streamCh: make(chan net.Conn),
		stopFwd:  make(chan struct{}),
	}
	t.fwd.Go(t.forwardPackets)
	t.fwd.Go(t.forwardStreams)
	return t
}

// Addr returns the canonical address the rules match this transport by.
func (t *Transport) Addr() string { return t.addr }

// FinalAdvertiseAddr returns the virtual address in memory, and asks the inner
// transport for a wrapped one.
func (t *Transport) FinalAdvertiseAddr(ip string, port int) (net.IP, int, error) {
	if t.inner != nil {
		return t.inner.FinalAdvertiseAddr(ip, port)
	}
	a := t.udpAddr.(*net.UDPAddr)
	return a.IP, a.Port, nil
}

// WriteTo sends a packet to addr; see WriteToAddress.
func (t *Transport) WriteTo(b []byte, addr string) (time.Time, error) {
	return t.WriteToAddress(b, memberlist.Address{Addr: addr})
}

// WriteToAddress sends a packet to a.Addr, subject to the network's rules. It
// never blocks: a dropped packet, or one for a full queue, is reported as sent,
// like UDP. It returns ErrClosed after Shutdown.
func (t *Transport) WriteToAddress(b []byte, a memberlist.Address) (time.Time, error) {
	if t.isClosed() {
		return time.Time{}, fmt.Errorf("gossiptest: write from %s: %w", t.addr, ErrClosed)
	}
	to := normalize(a.Addr)
	delays := t.net.plan(t.addr, to)
	if t.inner != nil {
		return t.sendWrapped(b, a, delays)
	}
	now := time.Now()
	if len(delays) == 0 {
		return now, nil
	}
	t.net.mu.Lock()
	dst := t.net.transports[to]
	t.net.mu.Unlock()
	if dst == nil {
		t.net.stats.dropped.Add(uint64(len(delays)))
		return now, nil
	}
	for _, d := range delays {
		p := &memberlist.Packet{Buf: bytes.Clone(b), From: t.udpAddr}
		if d <= 0 {
			dst.deliver(p)
			continue
		}
		dst.after(d, func() { dst.deliver(p) })
	}
	return now, nil
}

// sendWrapped hands the planned copies of b to the inner transport.
func (t *Transport) sendWrapped(b []byte, a memberlist.Address, delays []time.Duration) (time.Time, error) {
	var (
		ts   = time.Now()
		err  error
		sent bool
	)
	for _, d := range delays {
		if d <= 0 {
			var e error
			if !sent {
				ts, e = t.inner.WriteToAddress(b, a)
				sent = true
			} else {
				_, e = t.inner.WriteToAddress(b, a)
			}
			t.countWrapped(e)
			if err == nil {
				err = e
			}
			continue
		}
		buf := bytes.Clone(b)
		t.after(d, func() {
			_, e := t.inner.WriteToAddress(buf, a)
			t.countWrapped(e)
		})
	}
	return ts, err
}

func (t *Transport) countWrapped(err error) {
	if err != nil {
		t.net.stats.dropped.Add(1)
		return
	}
	t.net.stats.delivered.Add(1)
}

// deliver puts p in the receive queue unless the transport is shut down or
// the queue is full; it never blocks.
func (t *Transport) deliver(p *memberlist.Packet) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		t.net.stats.dropped.Add(1)
		return
	}
	p.Timestamp = time.Now()
	select {
	case t.packetCh <- p:
		t.net.stats.delivered.Add(1)
	default:
		t.net.stats.dropped.Add(1)
	}
}

// forward moves packets from the inner transport to the receive queue,
// dropping those a partition forbids, until Shutdown.
func (t *Transport) forwardPackets() {
	in := t.inner.PacketCh()
	for {
		select {
		case p := <-in:
			if p == nil {
				continue
			}
			if p.From != nil && !t.net.allowed(normalize(p.From.String()), t.addr) {
				t.net.stats.dropped.Add(1)
				continue
			}
			t.mu.Lock()
			if !t.closed {
				select {
				case t.packetCh <- p:
				default:
					t.net.stats.dropped.Add(1)
				}
			}
			t.mu.Unlock()
		case <-t.stopFwd:
			// Closed only after inner has shut down: until then keep
			// draining, as its listeners may block on an unbuffered
			// channel (NetTransport's do).
			return
		}
	}
}

// PacketCh returns the receive queue. It is never closed.
func (t *Transport) PacketCh() <-chan *memberlist.Packet { return t.packetCh }

// forwardStreams hands the inner transport's accepted streams to StreamCh's
// reader until Shutdown, and closes those nobody takes after Shutdown began,
// so an inner listener never stays blocked and inner.Shutdown can finish.
func (t *Transport) forwardStreams() {
	in := t.inner.StreamCh()
	for {
		select {
		case c := <-in:
			select {
			case t.streamCh <- c:
			case <-t.done:
				_ = c.Close()
			}
		case <-t.stopFwd:
			return
		}
	}
}

// StreamCh returns the channel of accepted streams: in memory, the server
// ends of dials to this transport; wrapped, the inner transport's accepted
// streams. It is never closed.
func (t *Transport) StreamCh() <-chan net.Conn { return t.streamCh }

// Shutdown stops the transport: nothing more is delivered to it, its pending
// delayed packets are discarded, dials to and from it fail, its open streams
// are closed, and for Wrap the inner transport is shut down and the forwarder
// has exited when Shutdown returns. It is idempotent and returns the inner
// transport's error, if any.
func (t *Transport) Shutdown() error {
	var err error
	t.shutdownOnce.Do(func() {
		t.mu.Lock()
		t.closed = true
		discarded := len(t.delayed)
		t.delayed = nil
		if t.timer != nil {
			t.timer.Stop()
		}
		t.mu.Unlock()
		t.net.stats.dropped.Add(uint64(discarded))
		close(t.done)

		n := t.net
		n.mu.Lock()
		if n.transports[t.addr] == t {
			delete(n.transports, t.addr)
		}
		var ends []*conn
		for c := range n.conns {
			if c.owner == t || c.peer == t {
				ends = append(ends, c)
			}
		}
		n.mu.Unlock()
		for _, c := range ends {
			_ = c.Close()
		}

		if t.inner != nil {
			err = t.inner.Shutdown()
			close(t.stopFwd)
			t.fwd.Wait()
		}
	})
	return err
}

func (t *Transport) isClosed() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.closed
}
