package gossip

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"
)

// Bounds on memberlist's TCP listener (issue 12).
//
// memberlist v0.7.0 reads a whole encrypted stream into memory before it
// checks the key: net.go:1150, in decryptRemoteState,
//
//	_, err = io.CopyN(cipherText, bufConn, int64(moreBytes))
//
// with moreBytes up to maxPushStateBytes (net.go:89, 20 MiB), and only then
// decryptPayload (net.go:1166). Anyone who can reach the port can make a node
// buffer 20 MiB per connection, with no limit on connections: four took a
// node to 302 MiB. (To report upstream: check the length against what a
// push/pull of the known cluster size can be, and read in chunks, decrypting
// nothing until the tag is in.) The plaintext path allocates a declared
// user message (up to maxUserMsgBytes, net.go:91) before reading it.
//
// limitedTransport wraps the transport memberlist listens on: it caps the
// streams open at once, in total and per source address, and the bytes any
// one stream may deliver. Streams over a cap are closed at once, unread.
type limitedTransport struct {
	memberlist.NodeAwareTransport
	maxStreams, maxPerSource int
	maxBytes                 int64

	out  chan net.Conn
	done chan struct{}
	wg   sync.WaitGroup

	refused  *atomic.Uint64 // counters.streamsRefused
	overLong *atomic.Uint64 // counters.streamsCut
	warn     func(msg string, args ...any)

	mu       sync.Mutex
	open     int
	perSrc   map[string]int
	lastWarn time.Time
}

// Defaults of Config.MaxStreams, MaxStreamsPerSource and MaxStreamBytes.
const (
	defaultMaxStreams          = 64
	defaultMaxStreamsPerSource = 8
	// A push/pull carries memberlist's node table (under 1 KiB a member
	// with the largest metadata) and our state (at most maxMessageSize);
	// 1 MiB is room for a cluster of about a thousand members.
	defaultMaxStreamBytes = 1 << 20
)

func newLimitedTransport(t memberlist.Transport, maxStreams, maxPerSource int, maxBytes int64,
	refused, overLong *atomic.Uint64, warn func(string, ...any)) *limitedTransport {
	na, ok := t.(memberlist.NodeAwareTransport)
	if !ok {
		na = &shimTransport{t}
	}
	l := &limitedTransport{
		NodeAwareTransport: na,
		maxStreams:         maxStreams,
		maxPerSource:       maxPerSource,
		maxBytes:           maxBytes,
		out:                make(chan net.Conn),
		done:               make(chan struct{}),
		refused:            refused,
		overLong:           overLong,
		warn:               warn,
		perSrc:             make(map[string]int),
	}
	l.wg.Add(1)
	go l.loop(na.StreamCh())
	return l
}

// shimTransport makes a plain Transport node-aware, as memberlist does.
type shimTransport struct{ memberlist.Transport }

func (t *shimTransport) WriteToAddress(b []byte, a memberlist.Address) (time.Time, error) {
	return t.WriteTo(b, a.Addr)
}

func (t *shimTransport) DialAddressTimeout(a memberlist.Address, timeout time.Duration) (net.Conn, error) {
	return t.DialTimeout(a.Addr, timeout)
}

func (l *limitedTransport) StreamCh() <-chan net.Conn { return l.out }

func (l *limitedTransport) Shutdown() error {
	err := l.NodeAwareTransport.Shutdown()
	close(l.done)
	l.wg.Wait()
	return err
}

func (l *limitedTransport) loop(in <-chan net.Conn) {
	defer l.wg.Done()
	for {
		var c net.Conn
		select {
		case c = <-in:
		case <-l.done:
			return
		}
		lc := l.admit(c)
		if lc == nil {
			continue
		}
		select {
		case l.out <- lc:
		case <-l.done:
			lc.Close()
			return
		}
	}
}

// admit returns c wrapped and counted, or closes it and returns nil.
func (l *limitedTransport) admit(c net.Conn) net.Conn {
	src := sourceOf(c.RemoteAddr())
	l.mu.Lock()
	if l.open >= l.maxStreams || l.perSrc[src] >= l.maxPerSource {
		open, fromSrc := l.open, l.perSrc[src]
		warn := time.Since(l.lastWarn) >= rejectLogEvery
		if warn {
			l.lastWarn = time.Now()
		}
		l.mu.Unlock()
		n := l.refused.Add(1)
		c.Close()
		if warn {
			l.warn("gossip: refusing TCP streams over the cap (a flood, or MaxStreams too low for this cluster)",
				"source", src, "open", open, "open_from_source", fromSrc,
				"max", l.maxStreams, "max_per_source", l.maxPerSource, "refused_total", n)
		}
		return nil
	}
	l.open++
	l.perSrc[src]++
	l.mu.Unlock()
	return &limitedConn{Conn: c, l: l, src: src, left: l.maxBytes}
}

func (l *limitedTransport) release(src string) {
	l.mu.Lock()
	l.open--
	if l.perSrc[src]--; l.perSrc[src] <= 0 {
		delete(l.perSrc, src)
	}
	l.mu.Unlock()
}

// sourceOf is the host of a remote address (the port changes per stream).
func sourceOf(a net.Addr) string {
	if a == nil {
		return ""
	}
	s := a.String()
	if h, _, err := net.SplitHostPort(s); err == nil {
		return h
	}
	if i := strings.LastIndexByte(s, ':'); i > 0 {
		return s[:i]
	}
	return s
}

var errStreamTooLong = errors.New("gossip: stream longer than MaxStreamBytes")

// limitedConn counts itself out on Close and fails reads past its budget,
// so memberlist's CopyN of a declared 20 MiB stops at MaxStreamBytes.
type limitedConn struct {
	net.Conn
	l    *limitedTransport
	src  string
	left int64
	once sync.Once

	decided bool   // the head was checked
	head    []byte // the stream's first bytes until then
}

func (c *limitedConn) Read(b []byte) (int, error) {
	if c.left <= 0 {
		c.l.overLong.Add(1)
		return 0, fmt.Errorf("%w (%d bytes)", errStreamTooLong, c.l.maxBytes)
	}
	if int64(len(b)) > c.left {
		b = b[:c.left]
	}
	n, err := c.Conn.Read(b)
	c.left -= int64(n)
	if !c.decided && n > 0 {
		if c.head = append(c.head, b[:n]...); c.checkHead() {
			c.left = 0
			c.l.overLong.Add(1)
			return 0, fmt.Errorf("%w: it announces more", errStreamTooLong)
		}
	}
	return n, err
}

// checkHead looks at the start of the stream as memberlist will read it: an
// optional label header (hasLabelMsg 244, length, label), then the message
// type; for an encrypted one (encryptMsg 10), the length of what follows.
// It reports whether that length is over MaxStreamBytes, so the stream is
// cut before memberlist buffers any of it (decryptRemoteState reads all of
// it before it checks the key).
func (c *limitedConn) checkHead() (tooLong bool) {
	h := c.head
	off := 0
	if len(h) > 0 && h[0] == 244 {
		if len(h) < 2 {
			return false
		}
		off = 2 + int(h[1])
	}
	if len(h) <= off {
		return false
	}
	if h[off] != 10 { // not encrypted: only the byte budget applies
		c.decided, c.head = true, nil
		return false
	}
	if len(h) < off+5 {
		return false
	}
	c.decided, c.head = true, nil
	return int64(binary.BigEndian.Uint32(h[off+1:off+5])) > c.l.maxBytes
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.l.release(c.src) })
	return err
}
