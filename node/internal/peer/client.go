package peer

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// ErrClosed is returned by Fill on a closed Client.
var ErrClosed = errors.New("peer: closed")

// ErrAuth is wrapped by the error of a fill whose response was not
// authenticated by the shared key (missing or wrong MAC).
var ErrAuth = errors.New("peer: response authentication failed")

// ClientConfig configures [NewClient]. A zero field means its default.
type ClientConfig struct {
	Name      string   // our member name (sent as Request.From); required
	SecretKey []byte   // the fill key (see ServerConfig.SecretKey); nil = plaintext
	Keyring   [][]byte // or several: the first (the primary) is used; see Client.SetKeyring
	// Target names the member listening at addr, sent in the hello of a
	// keyed connection: a server with another name refuses it. nil or ""
	// = no name (a server that checks names refuses it).
	Target  func(addr string) string
	MaxIdle int // idle connections kept per peer; 0 = 4
	// IdleTime is how long a pooled connection may stay idle and still be
	// reused; 0 = 60s. Keep it below the servers' IdleTimeout (90s by
	// default): a connection the server has closed meanwhile would fail its
	// next fill.
	IdleTime time.Duration
	MaxValue int // bytes of a response value accepted; 0 = 16 MiB
	// MaxRequest is the largest request frame body sent: FillMany splits
	// a batch into frames of at most this size. Keep it at or below the
	// servers' ServerConfig.MaxRequest; 0 = 4 KiB, the servers' default.
	MaxRequest  int
	DialTimeout time.Duration // 0 = 1s (and never beyond the ctx deadline)
	// Dial opens a connection to addr; ctx bounds the dial only (it carries
	// DialTimeout). Tests hand in an in-memory network's dialer (see
	// gossip/gossiptest.FillNetwork). nil = a net.Dialer over TCP.
	Dial func(ctx context.Context, addr string) (net.Conn, error)
}

func (c ClientConfig) validate() error {
	switch {
	case c.Name == "":
		return errors.New("peer: Name is required")
	case c.MaxIdle < 0:
		return errors.New("peer: MaxIdle must not be negative")
	case c.MaxValue < 0 || c.MaxRequest < 0:
		return errors.New("peer: MaxValue and MaxRequest must not be negative")
	case c.DialTimeout < 0 || c.IdleTime < 0:
		return errors.New("peer: DialTimeout and IdleTime must not be negative")
	case c.SecretKey != nil && len(c.Keyring) > 0:
		return errors.New("peer: set SecretKey or Keyring, not both")
	}
	return nil
}

func (c ClientConfig) withDefaults() ClientConfig {
	if c.MaxIdle == 0 {
		c.MaxIdle = 4
	}
	if c.MaxValue == 0 {
		c.MaxValue = defaultMaxValue
	}
	if c.MaxRequest == 0 {
		c.MaxRequest = defaultMaxRequest
	}
	if c.DialTimeout == 0 {
		c.DialTimeout = time.Second
	}
	if c.IdleTime == 0 {
		c.IdleTime = 60 * time.Second
	}
	c.SecretKey = bytes.Clone(c.SecretKey)
	return c
}

// ClientStats counts what a Client has done since NewClient.
type ClientStats struct {
	Fills         uint64 // calls to Fill
	Batches       uint64 // calls to FillMany (one round trip each)
	Dials         uint64 // connections dialed
	Reused        uint64 // round trips started on a pooled connection
	Retries       uint64 // fills retried once on a fresh connection after a stale pooled one failed
	DialErrors    uint64 // fills failed dialing
	TimeoutErrors uint64 // fills failed by their ctx (deadline or cancel)
	IOErrors      uint64 // fills failed reading or writing
	DecodeErrors  uint64 // fills failed on a malformed or oversized response
	AuthErrors    uint64 // fills failed on a response that does not authenticate
	Handshakes    uint64 // keyed connections opened (hello answered)
}

type clientStats struct {
	fills, batches, dials, reused atomic.Uint64
	retries                       atomic.Uint64
	dialErrs, timeoutErrs, ioErrs atomic.Uint64
	decodeErrs, authErrs          atomic.Uint64
	handshakes                    atomic.Uint64
}

type errKind uint8

const (
	kindIO errKind = iota
	kindDial
	kindTimeout
	kindDecode
	kindAuth
)

// Client sends fills to peers over pooled connections.
type Client struct {
	cfg   ClientConfig
	dial  func(ctx context.Context, addr string) (net.Conn, error)
	stats clientStats
	keys  keys

	mu sync.Mutex
	// guarded by mu
	closed bool
	idle   map[string][]*clientConn // per address, most recently used last
	conns  map[*clientConn]struct{} // every open connection, idle or in use
}

// clientConn is one pooled connection; a single Fill uses it at a time.
type clientConn struct {
	nc       net.Conn
	addr     string
	br       *bufio.Reader
	sess     *session  // keyed: set by the handshake
	broken   bool      // refused at the handshake: never pooled
	idleAt   time.Time // when it was last put in the pool
	out, in  []byte
	plain    []byte
	nextID   uint64 // starts at 1: a server that cannot parse a request answers id 0
	deadline bool   // a deadline is set on nc
	closeFn  func() // nc.Close for context.AfterFunc, made once
}

// NewClient validates cfg and returns a Client; it dials on demand.
func NewClient(cfg ClientConfig) (*Client, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	c := &Client{
		cfg:   cfg,
		idle:  make(map[string][]*clientConn),
		conns: make(map[*clientConn]struct{}),
	}
	ck := cfg.Keyring
	if len(ck) == 0 && cfg.SecretKey != nil {
		ck = [][]byte{cfg.SecretKey}
	}
	ks, err := newKeyset(ck)
	if err != nil {
		return nil, err
	}
	c.keys.p.Store(ks)
	if cfg.Dial != nil {
		dial := cfg.Dial
		c.dial = func(ctx context.Context, addr string) (net.Conn, error) {
			ctx, cancel := context.WithTimeout(ctx, cfg.DialTimeout)
			defer cancel()
			return dial(ctx, addr)
		}
	} else {
		d := &net.Dialer{Timeout: cfg.DialTimeout}
		c.dial = func(ctx context.Context, addr string) (net.Conn, error) { return d.DialContext(ctx, "tcp", addr) }
	}
	return c, nil
}

// Close closes every connection; fills in flight fail and later fills
// return [ErrClosed]. It is idempotent.
func (c *Client) Close() error {
	c.mu.Lock()
	c.closed = true
	conns := c.conns
	c.conns = nil
	c.idle = nil
	c.mu.Unlock()
	for cc := range conns {
		cc.nc.Close()
	}
	return nil
}

// SetKeyring replaces the client's keys; keys[0] (the primary) opens new
// connections from now on. Idle connections are closed, so every later fill
// uses it; fills in flight finish on theirs (a server closes a connection
// whose key it no longer holds). A client started without a key cannot get
// one, nor a keyed one lose all.
func (c *Client) SetKeyring(keys [][]byte) error {
	if (c.keys.load() == nil) != (len(keys) == 0) {
		return errors.New("peer: SetKeyring cannot switch between keyed and plaintext")
	}
	ks, err := newKeyset(keys)
	if err != nil {
		return err
	}
	c.keys.p.Store(ks)
	c.CloseIdleExcept(func(string) bool { return false })
	return nil
}

// CloseIdle closes the idle connections to addr, for a peer that left the
// cluster; fills in flight to it are not affected.
func (c *Client) CloseIdle(addr string) {
	c.mu.Lock()
	idle := c.idle[addr]
	delete(c.idle, addr)
	for _, cc := range idle {
		delete(c.conns, cc)
	}
	c.mu.Unlock()
	for _, cc := range idle {
		cc.nc.Close()
	}
}

// CloseIdleExcept closes the idle connections to every address for which
// keep returns false, for the peers that left the cluster at a membership
// change; fills in flight are not affected. keep runs under the client's
// lock: it must not call the client.
func (c *Client) CloseIdleExcept(keep func(addr string) bool) {
	var idle []*clientConn
	c.mu.Lock()
	for addr, l := range c.idle {
		if keep(addr) {
			continue
		}
		for _, cc := range l {
			delete(c.conns, cc)
		}
		idle = append(idle, l...)
		delete(c.idle, addr)
	}
	c.mu.Unlock()
	for _, cc := range idle {
		cc.nc.Close()
	}
}

// Idle returns how many idle pooled connections the client keeps to addr.
func (c *Client) Idle(addr string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.idle[addr])
}

// Stats returns a snapshot of the client's counters.
func (c *Client) Stats() ClientStats {
	return ClientStats{
		Fills:         c.stats.fills.Load(),
		Batches:       c.stats.batches.Load(),
		Dials:         c.stats.dials.Load(),
		Reused:        c.stats.reused.Load(),
		Retries:       c.stats.retries.Load(),
		DialErrors:    c.stats.dialErrs.Load(),
		TimeoutErrors: c.stats.timeoutErrs.Load(),
		IOErrors:      c.stats.ioErrs.Load(),
		DecodeErrors:  c.stats.decodeErrs.Load(),
		AuthErrors:    c.stats.authErrs.Load(),
		Handshakes:    c.stats.handshakes.Load(),
	}
}

// Fill asks the peer at addr to answer req; req.From is set to the client's
// Name. The error is a transport failure (dial, write, read, decode, MAC
// mismatch, ctx, [ErrClosed]) after which the caller should load by itself;
// a Refused, Error or other status is a Response, not an error. ctx bounds
// the dial, the write and the read; the error of a ctx that ended wraps
// ctx.Err(). An OK answer below req.Floor is reported as StatusBelowFloor.
func (c *Client) Fill(ctx context.Context, addr string, req Request) (Response, error) {
	c.stats.fills.Add(1)
	req.From = c.cfg.Name
	var resp Response
	err := c.do(ctx, addr, func(cc *clientConn) (errKind, error) {
		var kind errKind
		var err error
		resp, kind, err = c.exchange(cc, &req)
		return kind, err
	})
	if err != nil {
		return Response{}, err
	}
	return resp, nil
}

// do runs one exchange with addr on a pooled or new connection, bounded by
// ctx, and pools the connection after it.
func (c *Client) do(ctx context.Context, addr string, exchange func(*clientConn) (errKind, error)) error {
	for attempt := 0; ; attempt++ {
		if err := ctx.Err(); err != nil {
			return c.fail(addr, kindTimeout, err)
		}
		cc, reused, err := c.get(ctx, addr)
		if err != nil {
			if errors.Is(err, ErrClosed) {
				return err
			}
			kind := kindDial
			if ctx.Err() != nil {
				kind, err = kindTimeout, ctx.Err()
			}
			return c.fail(addr, kind, err)
		}
		kind, err := c.roundTrip(ctx, cc, exchange)
		if err == nil {
			c.put(addr, cc)
			return nil
		}
		c.discard(cc)
		// A pooled connection the peer closed while idle fails at once with
		// EOF or a reset: try once more on a fresh one, as net/http does.
		if reused && attempt == 0 && kind == kindIO && stale(err) {
			c.stats.retries.Add(1)
			continue
		}
		return c.fail(addr, kind, err)
	}
}

// stale reports whether err looks like a connection the peer had closed.
func stale(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

func (c *Client) fail(addr string, kind errKind, err error) error {
	switch kind {
	case kindDial:
		c.stats.dialErrs.Add(1)
	case kindTimeout:
		c.stats.timeoutErrs.Add(1)
	case kindDecode:
		c.stats.decodeErrs.Add(1)
	case kindAuth:
		c.stats.authErrs.Add(1)
	default:
		c.stats.ioErrs.Add(1)
	}
	return fmt.Errorf("peer: fill from %s: %w", addr, err)
}

// get returns a pooled connection to addr, or dials one.
func (c *Client) get(ctx context.Context, addr string) (cc *clientConn, reused bool, err error) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil, false, ErrClosed
	}
	var expired []*clientConn
	for l := c.idle[addr]; len(l) > 0; l = c.idle[addr] {
		cc = l[len(l)-1]
		l[len(l)-1] = nil
		c.idle[addr] = l[:len(l)-1]
		if time.Since(cc.idleAt) > c.cfg.IdleTime {
			// The server may have closed it (its IdleTimeout): do not bet a
			// fill on it.
			delete(c.conns, cc)
			expired = append(expired, cc)
			continue
		}
		c.mu.Unlock()
		for _, e := range expired {
			e.nc.Close()
		}
		c.stats.reused.Add(1)
		return cc, true, nil
	}
	c.mu.Unlock()
	for _, e := range expired {
		e.nc.Close()
	}

	nc, err := c.dial(ctx, addr)
	if err != nil {
		return nil, false, err
	}
	c.stats.dials.Add(1)
	cc = &clientConn{nextID: 1, nc: nc, addr: addr, br: bufio.NewReaderSize(nc, 4<<10), closeFn: func() { nc.Close() }}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		nc.Close()
		return nil, false, ErrClosed
	}
	c.conns[cc] = struct{}{}
	return cc, false, nil
}

// put returns a healthy connection to the pool, or closes it when the pool
// is full or the client closed.
func (c *Client) put(addr string, cc *clientConn) {
	c.mu.Lock()
	if !c.closed && !cc.broken && len(c.idle[addr]) < c.cfg.MaxIdle {
		cc.idleAt = time.Now()
		c.idle[addr] = append(c.idle[addr], cc)
		c.mu.Unlock()
		return
	}
	c.mu.Unlock()
	c.discard(cc)
}

// discard closes a connection that is in no idle list.
func (c *Client) discard(cc *clientConn) {
	cc.nc.Close()
	c.mu.Lock()
	delete(c.conns, cc) // no-op after Close set conns to nil
	c.mu.Unlock()
}

// roundTrip runs exchange on cc (send, then read the answers), bounded by ctx.
func (c *Client) roundTrip(ctx context.Context, cc *clientConn, exchange func(*clientConn) (errKind, error)) (errKind, error) {
	if d, ok := ctx.Deadline(); ok {
		cc.nc.SetDeadline(d)
		cc.deadline = true
	} else if cc.deadline {
		cc.nc.SetDeadline(time.Time{})
		cc.deadline = false
	}
	var stop func() bool
	if ctx.Done() != nil {
		// A cancel (not only a deadline) must unblock the read.
		stop = context.AfterFunc(ctx, cc.closeFn)
	}
	kind, err := exchange(cc)
	if stop != nil && !stop() {
		// ctx ended and closed the connection: whatever happened, it is lost.
		return kindTimeout, ctx.Err()
	}
	if err != nil {
		if ctx.Err() != nil {
			return kindTimeout, ctx.Err()
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			// The conn deadline is the ctx deadline; ctx may lag by a hair.
			return kindTimeout, context.DeadlineExceeded
		}
	}
	return kind, err
}

// handshake opens a keyed session on cc: it sends the hello and reads the
// server's nonce. A refusal is returned as a Refused response.
func (c *Client) handshake(cc *clientConn, ks *keyset) (*Response, errKind, error) {
	id := ks.ids[0]
	cNonce := newNonce()
	target := ""
	if c.cfg.Target != nil {
		target = c.cfg.Target(cc.addr)
	}
	cc.out = append(cc.out[:0], 0, 0, 0, 0)
	cc.out = appendHello(cc.out, id, cNonce, target, c.cfg.Name)
	putFrameHeader(cc.out)
	if _, err := cc.nc.Write(cc.out); err != nil {
		return nil, kindIO, err
	}
	body, err := readFrame(cc.br, cc.in, maxHello+maxErrLen+respOverhead)
	cc.in = body
	if err != nil {
		if errors.Is(err, ErrMalformed) {
			return nil, kindDecode, err
		}
		return nil, kindIO, err
	}
	if len(body) > 0 && body[0] == FormatVersion {
		// A plaintext server: its refusal or its error, in clear.
		r, _, derr := decodeResponse(body, 0)
		if derr == nil && r.Status == StatusRefused {
			cc.broken = true
			return &r, 0, nil
		}
		return nil, kindAuth, fmt.Errorf("%w: the server speaks plaintext (it has no key)", ErrAuth)
	}
	st, sNonce, reason, err := decodeHelloAck(body)
	if err != nil {
		return nil, kindDecode, err
	}
	if st == StatusRefused {
		cc.broken = true
		return &Response{Status: StatusRefused, Err: reason}, 0, nil
	}
	sess, err := newSession(ks.keys[0], id, cNonce, sNonce, target, true)
	if err != nil {
		return nil, kindAuth, err
	}
	cc.sess = sess
	c.stats.handshakes.Add(1)
	return nil, 0, nil
}

func (c *Client) exchange(cc *clientConn, req *Request) (Response, errKind, error) {
	keyed, r, kind, err := c.session(cc)
	if err != nil || r != nil {
		if r != nil {
			return *r, 0, nil
		}
		return Response{}, kind, err
	}
	id := cc.nextID
	cc.nextID++
	ts := time.Now().UnixNano()
	if keyed {
		cc.plain = appendRequest(cc.plain[:0], id, ts, req, nil)
		cc.sess.sent++
		cc.out = cc.sess.seal(cc.out[:0], cc.sess.sent, cc.plain)
	} else {
		cc.out = append(cc.out[:0], 0, 0, 0, 0)
		cc.out = appendRequest(cc.out, id, ts, req, nil)
		putFrameHeader(cc.out)
	}
	if _, err := cc.nc.Write(cc.out); err != nil {
		return Response{}, kindIO, err
	}
	resp, kind, err := c.readResponse(cc, keyed, id, req.Floor)
	if err != nil {
		return Response{}, kind, err
	}
	c.trimBuffers(cc)
	return resp, 0, nil
}

// session opens cc's keyed session when the client has a key and cc has
// none yet. keyed says whether cc is keyed; a non-nil r is the server's
// refusal, the answer to every request of this exchange.
func (c *Client) session(cc *clientConn) (keyed bool, r *Response, kind errKind, err error) {
	if cc.sess != nil {
		return true, nil, 0, nil
	}
	ks := c.keys.load()
	if ks == nil {
		return false, nil, 0, nil
	}
	r, kind, err = c.handshake(cc, ks)
	return err == nil && r == nil, r, kind, err
}

// readResponse reads the response to request id: opened when keyed, its id
// checked, its value the caller's own copy, an OK below floor reported as
// StatusBelowFloor.
func (c *Client) readResponse(cc *clientConn, keyed bool, id, floor uint64) (Response, errKind, error) {
	limit := c.cfg.MaxValue + respOverhead
	if keyed {
		limit += sealedHeader + gcmTag
	}
	body, err := readFrame(cc.br, cc.in, limit)
	cc.in = body
	if err != nil {
		if errors.Is(err, ErrMalformed) {
			return Response{}, kindDecode, err
		}
		return Response{}, kindIO, err
	}
	if keyed {
		plain, err := cc.sess.open(cc.plain[:0], body, cc.sess.opened+1)
		if err != nil {
			if errors.Is(err, ErrMalformed) {
				return Response{}, kindDecode, err
			}
			return Response{}, kindAuth, fmt.Errorf("%w: %v", ErrAuth, err)
		}
		cc.sess.opened++
		cc.plain = plain
		body = plain
	}
	r, m, err := decodeResponse(body, c.cfg.MaxValue)
	if err != nil {
		return Response{}, kindDecode, err
	}
	if m.id != id {
		return Response{}, kindDecode, fmt.Errorf("%w: response to request %d, want %d", ErrMalformed, m.id, id)
	}
	if m.mac != nil {
		return Response{}, kindDecode, fmt.Errorf("%w: a MAC in a response (the protocol before issue 12)", ErrMalformed)
	}
	if r.Status == StatusOK && r.Version < floor {
		return Response{Status: StatusBelowFloor, Version: r.Version}, 0, nil
	}
	v := make([]byte, len(r.Value)) // the caller's own copy
	copy(v, r.Value)
	r.Value = v
	return r, 0, nil
}

// trimBuffers drops cc's buffers grown beyond keepBuf by a large value.
func (c *Client) trimBuffers(cc *clientConn) {
	if cap(cc.in) > keepBuf {
		cc.in = nil
	}
	if cap(cc.plain) > keepBuf {
		cc.plain = nil
	}
	if cap(cc.out) > keepBuf {
		cc.out = nil
	}
}
