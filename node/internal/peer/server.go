package peer

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// ServerConfig configures [Listen]. A zero field means its default.
type ServerConfig struct {
	Addr string // listen address; "" = "127.0.0.1:0"; ignored with Listener
	// SecretKey is the fill key (any length; node derives it from the
	// cluster key with HKDF). nil = no key: requests and values in clear,
	// no authentication (trusted network only). With a key every
	// connection is an encrypted, replay-proof channel (see seal.go).
	SecretKey []byte
	// Keyring is several fill keys, all accepted (rotation, see
	// Server.SetKeyring); set it or SecretKey.
	Keyring [][]byte
	// Name is this node's member name. With a key, a connection whose
	// hello names another target is refused, so a connection redirected
	// from the node it was meant for is refused. "" = no check.
	Name       string
	Handler    Handler                // required
	IsMember   func(name string) bool // nil = accept any From; else a From that is not a current member is Refused
	MaxRequest int                    // bytes of a request frame body; 0 = 4 KiB
	MaxValue   int                    // bytes of a response value; 0 = 16 MiB
	Timeout    time.Duration          // per request, handler and response write; 0 = 5s
	MaxSkew    time.Duration          // accepted clock difference for request timestamps (keyed only); 0 = 30s
	// MaxConns caps the open connections; 0 = 1024. At the cap a new
	// connection evicts the oldest one that has not completed a request
	// yet (an idle or slow opener can never push out a working peer), or
	// is closed at once if every connection is working.
	MaxConns int
	// FirstFrameTimeout bounds how long a new connection may take to send
	// its first complete frame; 0 = 5s.
	FirstFrameTimeout time.Duration
	// IdleTimeout closes a connection that sends nothing for this long
	// between requests (clients redial, see Client); 0 = 90s.
	IdleTimeout time.Duration
	Logger      *slog.Logger // nil = discard
	// Listener, when set, is served instead of a TCP listener on Addr (tests
	// hand in an in-memory one, see gossip/gossiptest.FillNetwork). The
	// Server owns it from Listen on: Close closes it, and so does a Listen
	// that fails its validation. nil = listen on Addr.
	Listener net.Listener
}

const (
	defaultMaxRequest = 4 << 10
	defaultMaxValue   = 16 << 20
	// keepBuf is the largest per-connection buffer kept between messages;
	// a bigger one (a large value) is dropped after use.
	keepBuf = 64 << 10
)

func (c ServerConfig) validate() error {
	switch {
	case c.Handler == nil:
		return errors.New("peer: Handler is required")
	case c.MaxRequest < 0:
		return errors.New("peer: MaxRequest must not be negative")
	case c.MaxValue < 0:
		return errors.New("peer: MaxValue must not be negative")
	case c.Timeout < 0:
		return errors.New("peer: Timeout must not be negative")
	case c.MaxSkew < 0:
		return errors.New("peer: MaxSkew must not be negative")
	case c.MaxConns < 0 || c.FirstFrameTimeout < 0 || c.IdleTimeout < 0:
		return errors.New("peer: MaxConns and timeouts must not be negative")
	case c.SecretKey != nil && len(c.Keyring) > 0:
		return errors.New("peer: set SecretKey or Keyring, not both")
	}
	return nil
}

func (c ServerConfig) withDefaults() ServerConfig {
	if c.Addr == "" {
		c.Addr = "127.0.0.1:0"
	}
	if c.MaxRequest == 0 {
		c.MaxRequest = defaultMaxRequest
	}
	if c.MaxValue == 0 {
		c.MaxValue = defaultMaxValue
	}
	if c.Timeout == 0 {
		c.Timeout = 5 * time.Second
	}
	if c.MaxSkew == 0 {
		c.MaxSkew = 30 * time.Second
	}
	if c.MaxConns == 0 {
		c.MaxConns = 1024
	}
	if c.FirstFrameTimeout == 0 {
		c.FirstFrameTimeout = 5 * time.Second
	}
	if c.IdleTimeout == 0 {
		c.IdleTimeout = 90 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	c.SecretKey = bytes.Clone(c.SecretKey)
	return c
}

// ServerStats counts what a Server has done since Listen.
type ServerStats struct {
	Conns         uint64 // connections accepted
	Requests      uint64 // well-formed requests decoded (a batch counts its keys)
	Batches       uint64 // well-formed batch frames decoded
	RefusedAuth   uint64 // refused: no key, an unknown key, or a frame that does not authenticate
	RefusedReplay uint64 // refused: a sealed frame replayed (or reordered) within its connection
	RefusedMember uint64 // refused: From is not a current member
	RefusedTarget uint64 // refused: the hello names another node (a redirected connection)
	RefusedConns  uint64 // connections closed at once: MaxConns working connections open
	Evicted       uint64 // connections closed to make room: the oldest that had completed no request
	IdleClosed    uint64 // connections closed by FirstFrameTimeout or IdleTimeout
	Errors        uint64 // answered StatusError (handler error or panic, value over MaxValue, invalid status)
	DecodeErrors  uint64 // malformed or oversized frames; each closed its connection
}

type serverStats struct {
	conns, requests, batches                  atomic.Uint64
	refusedAuth, refusedReplay, refusedMember atomic.Uint64
	refusedTarget, refusedConns, evicted      atomic.Uint64
	idleClosed                                atomic.Uint64
	errors, decodeErrors                      atomic.Uint64
}

// Server answers fills on one listening socket.
type Server struct {
	cfg    ServerConfig
	ln     net.Listener
	log    *slog.Logger
	ctx    context.Context // cancelled by Close; parent of every handler ctx
	cancel context.CancelFunc
	wg     sync.WaitGroup
	once   sync.Once
	stats  serverStats
	keys   keys

	mu sync.Mutex
	// guarded by mu
	closed bool
	conns  map[net.Conn]*connState
}

// connState is what the accept loop and SetKeyring know of a connection.
type connState struct {
	since   time.Time
	working atomic.Bool                     // completed a request: never evicted
	keyID   atomic.Pointer[[keyIDSize]byte] // the key its session uses (keyed only)
}

// Listen validates cfg, listens on cfg.Addr (or takes cfg.Listener) and
// serves until [Server.Close].
func Listen(cfg ServerConfig) (*Server, error) {
	if err := cfg.validate(); err != nil {
		if cfg.Listener != nil {
			cfg.Listener.Close()
		}
		return nil, err
	}
	cfg = cfg.withDefaults()
	ln := cfg.Listener
	if ln == nil {
		var err error
		if ln, err = net.Listen("tcp", cfg.Addr); err != nil {
			return nil, fmt.Errorf("peer: listen: %w", err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{cfg: cfg, ln: ln, log: cfg.Logger, ctx: ctx, cancel: cancel, conns: make(map[net.Conn]*connState)}
	ks, err := newKeyset(serverKeys(cfg))
	if err != nil {
		ln.Close()
		return nil, err
	}
	s.keys.p.Store(ks)
	s.wg.Add(1)
	go s.acceptLoop()
	return s, nil
}

func serverKeys(cfg ServerConfig) [][]byte {
	if len(cfg.Keyring) > 0 {
		return cfg.Keyring
	}
	if cfg.SecretKey != nil {
		return [][]byte{cfg.SecretKey}
	}
	return nil
}

// SetKeyring replaces the accepted keys (any of them opens a connection).
// Connections whose session uses a key no longer in the set are closed. A
// server started without a key cannot get one, nor a keyed one lose all:
// its peers speak the other protocol.
func (s *Server) SetKeyring(keys [][]byte) error {
	if (s.keys.load() == nil) != (len(keys) == 0) {
		return errors.New("peer: SetKeyring cannot switch between keyed and plaintext")
	}
	ks, err := newKeyset(keys)
	if err != nil {
		return err
	}
	s.keys.p.Store(ks)
	s.mu.Lock()
	for nc, st := range s.conns {
		if id := st.keyID.Load(); id != nil && !ks.has(*id) {
			nc.Close()
		}
	}
	s.mu.Unlock()
	return nil
}

// Addr returns the address the server listens on, with the actual port.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Close stops accepting, closes every connection, cancels the contexts of
// running handlers and waits for every goroutine the server started. It is
// idempotent; later calls return nil.
func (s *Server) Close() error {
	var err error
	s.once.Do(func() {
		s.mu.Lock()
		s.closed = true
		for nc := range s.conns {
			nc.Close()
		}
		s.mu.Unlock()
		s.cancel()
		err = s.ln.Close()
		s.wg.Wait()
	})
	return err
}

// Stats returns a snapshot of the server's counters.
func (s *Server) Stats() ServerStats {
	return ServerStats{
		Conns:         s.stats.conns.Load(),
		Requests:      s.stats.requests.Load(),
		Batches:       s.stats.batches.Load(),
		RefusedAuth:   s.stats.refusedAuth.Load(),
		RefusedReplay: s.stats.refusedReplay.Load(),
		RefusedMember: s.stats.refusedMember.Load(),
		RefusedTarget: s.stats.refusedTarget.Load(),
		RefusedConns:  s.stats.refusedConns.Load(),
		Evicted:       s.stats.evicted.Load(),
		IdleClosed:    s.stats.idleClosed.Load(),
		Errors:        s.stats.errors.Load(),
		DecodeErrors:  s.stats.decodeErrors.Load(),
	}
}

func (s *Server) acceptLoop() {
	defer s.wg.Done()
	var delay time.Duration
	for {
		nc, err := s.ln.Accept()
		if err != nil {
			if s.ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of file descriptors and the like: back off as net/http does.
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			s.log.Error("peer: accept", "err", err, "retry_in", delay)
			t := time.NewTimer(delay)
			select {
			case <-t.C:
			case <-s.ctx.Done():
				t.Stop()
				return
			}
			continue
		}
		delay = 0
		st, ok := s.track(nc)
		if !ok {
			nc.Close()
			if s.ctx.Err() != nil {
				return
			}
			continue
		}
		s.stats.conns.Add(1)
		go s.serveConn(nc, st)
	}
}

// track registers nc and adds its goroutine to wg, unless the server closed
// or MaxConns working connections are open. At the cap it evicts the oldest
// connection that has completed no request. Adding under mu orders every
// wg.Add before Close's wg.Wait.
func (s *Server) track(nc net.Conn) (*connState, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, false
	}
	if len(s.conns) >= s.cfg.MaxConns {
		var victim net.Conn
		var vst *connState
		for c, st := range s.conns {
			if !st.working.Load() && (vst == nil || st.since.Before(vst.since)) {
				victim, vst = c, st
			}
		}
		if victim == nil {
			s.stats.refusedConns.Add(1)
			return nil, false
		}
		victim.Close() // its goroutine untracks it
		delete(s.conns, victim)
		s.stats.evicted.Add(1)
	}
	st := &connState{since: time.Now()}
	s.conns[nc] = st
	s.wg.Add(1)
	return st, true
}

func (s *Server) untrack(nc net.Conn) {
	s.mu.Lock()
	delete(s.conns, nc)
	s.mu.Unlock()
}

// serverConn is one connection's reusable state; only its goroutine uses it.
type serverConn struct {
	nc    net.Conn
	st    *connState
	br    *bufio.Reader
	sess  *session // keyed: set by the hello
	in    []byte
	out   []byte
	plain []byte
}

func (s *Server) serveConn(nc net.Conn, st *connState) {
	defer s.wg.Done()
	defer s.untrack(nc)
	defer nc.Close()
	sc := &serverConn{nc: nc, st: st, br: bufio.NewReaderSize(nc, 4<<10)}
	keyed := s.keys.load() != nil
	for first := true; ; first = false {
		// A new connection must send its first frame within
		// FirstFrameTimeout, an open one its next within IdleTimeout;
		// once a frame starts, all of it must arrive within Timeout.
		wait := s.cfg.IdleTimeout
		if first {
			wait = s.cfg.FirstFrameTimeout
		}
		nc.SetReadDeadline(time.Now().Add(wait))
		_, err := sc.br.Peek(1)
		if err == nil {
			nc.SetReadDeadline(time.Now().Add(s.cfg.Timeout))
			var body []byte
			limit := s.cfg.MaxRequest
			if keyed {
				limit += sealedHeader + gcmTag
			}
			body, err = readFrame(sc.br, sc.in, limit)
			sc.in = body
			nc.SetReadDeadline(time.Time{})
		}
		if err != nil {
			switch {
			case errors.Is(err, ErrMalformed):
				s.stats.decodeErrors.Add(1)
				s.log.Debug("peer: closing connection", "remote", nc.RemoteAddr(), "err", err)
			case errors.Is(err, os.ErrDeadlineExceeded):
				s.stats.idleClosed.Add(1)
			case !errors.Is(err, io.EOF) && s.ctx.Err() == nil:
				s.log.Debug("peer: read", "remote", nc.RemoteAddr(), "err", err)
			}
			return
		}
		var ok bool
		switch {
		case keyed && first:
			ok = s.serveHello(sc, sc.in)
		case keyed:
			ok = s.serveSealed(sc, sc.in)
		default:
			ok = s.serveOne(sc, sc.in)
		}
		if !ok {
			return
		}
		if cap(sc.in) > keepBuf {
			sc.in = nil
		}
	}
}

// serveHello answers a keyed connection's first frame; false = close.
func (s *Server) serveHello(sc *serverConn, body []byte) bool {
	if len(body) > 0 && body[0] == FormatVersion {
		// A plaintext request to a keyed server: answer in its protocol.
		s.stats.refusedAuth.Add(1)
		_, m, _ := decodeRequest(body)
		s.write(sc, m.id, &Response{Status: StatusRefused, Err: "peer: encryption required"})
		return false
	}
	h, err := decodeHello(body)
	if err != nil {
		s.stats.decodeErrors.Add(1)
		s.log.Debug("peer: malformed hello", "remote", sc.nc.RemoteAddr(), "err", err)
		return false
	}
	refuse := func(reason string) bool {
		s.log.Debug("peer: refused", "remote", sc.nc.RemoteAddr(), "from", h.from, "reason", reason)
		sc.out = append(sc.out[:0], 0, 0, 0, 0)
		sc.out = appendHelloAck(sc.out, StatusRefused, make([]byte, nonceSize), reason)
		putFrameHeader(sc.out)
		sc.nc.SetWriteDeadline(time.Now().Add(s.cfg.Timeout))
		sc.nc.Write(sc.out)
		return false
	}
	ks := s.keys.load()
	key := ks.find(h.id)
	if key == nil {
		s.stats.refusedAuth.Add(1)
		return refuse("peer: unknown key (a different cluster key, or a rotation not applied on both sides)")
	}
	if s.cfg.Name != "" && h.target != s.cfg.Name {
		s.stats.refusedTarget.Add(1)
		return refuse("peer: connection meant for " + strconv.Quote(h.target) + ", this is " + strconv.Quote(s.cfg.Name))
	}
	sNonce := newNonce()
	id := [keyIDSize]byte(h.id)
	sess, err := newSession(key, id, h.nonce, sNonce, h.target, false)
	if err != nil {
		return refuse("peer: " + err.Error())
	}
	sc.sess = sess
	sc.st.keyID.Store(&id)
	sc.out = append(sc.out[:0], 0, 0, 0, 0)
	sc.out = appendHelloAck(sc.out, StatusOK, sNonce, "")
	putFrameHeader(sc.out)
	sc.nc.SetWriteDeadline(time.Now().Add(s.cfg.Timeout))
	_, err = sc.nc.Write(sc.out)
	return err == nil
}

// serveSealed answers one sealed request; false = close.
func (s *Server) serveSealed(sc *serverConn, body []byte) bool {
	plain, err := sc.sess.open(sc.plain[:0], body, sc.sess.opened+1)
	switch {
	case errors.Is(err, errReplay):
		s.stats.refusedReplay.Add(1)
		s.log.Debug("peer: replayed frame", "remote", sc.nc.RemoteAddr())
		return false
	case errors.Is(err, errOpen):
		s.stats.refusedAuth.Add(1)
		s.log.Debug("peer: frame does not authenticate", "remote", sc.nc.RemoteAddr())
		return false
	case err != nil:
		s.stats.decodeErrors.Add(1)
		return false
	}
	sc.plain = plain
	sc.sess.opened++
	return s.serveOne(sc, plain)
}

// serveOne answers one request body; false means close the connection.
func (s *Server) serveOne(sc *serverConn, body []byte) bool {
	if len(body) > 1 && body[1] == typeFillMany {
		return s.serveBatch(sc, body)
	}
	req, m, err := decodeRequest(body)
	if err != nil {
		s.stats.decodeErrors.Add(1)
		s.log.Debug("peer: malformed request", "remote", sc.nc.RemoteAddr(), "err", err)
		// Answer if we can, then close: the stream may be out of step.
		s.write(sc, 0, &Response{Status: StatusError, Err: "peer: malformed request"})
		return false
	}
	s.stats.requests.Add(1)
	var resp Response
	if reason := s.refuse(sc, &req, &m); reason != "" {
		s.log.Debug("peer: refused", "remote", sc.nc.RemoteAddr(), "from", req.From, "reason", reason)
		resp = Response{Status: StatusRefused, Err: reason}
	} else {
		sc.st.working.Store(true)
		resp = s.fill(&req)
	}
	if resp.Status == StatusError {
		s.stats.errors.Add(1)
	}
	return s.write(sc, m.id, &resp)
}

// refuse returns why req must be refused, or "".
func (s *Server) refuse(sc *serverConn, req *Request, m *reqMeta) string {
	if sc.sess == nil && m.mac != nil {
		// A client of the HMAC protocol (before issue 12) on a keyless server.
		s.stats.refusedAuth.Add(1)
		return "peer: this server has no key"
	}
	if sc.sess != nil {
		// Replays are refused by the session (seq, fresh nonces); the
		// timestamp, authenticated with the rest, still bounds how old a
		// request may be (a connection held open by a man in the middle).
		skew := time.Duration(time.Now().UnixNano() - m.ts)
		if skew > s.cfg.MaxSkew || skew < -s.cfg.MaxSkew || m.ts == 0 {
			s.stats.refusedReplay.Add(1)
			return "peer: request timestamp outside the accepted clock skew"
		}
	}
	if s.cfg.IsMember != nil && !s.cfg.IsMember(req.From) {
		s.stats.refusedMember.Add(1)
		return "peer: sender is not a member"
	}
	return ""
}

// fill runs the handler under the request's time budget and makes its answer
// fit the protocol.
func (s *Server) fill(req *Request) (resp Response) {
	ctx, cancel := context.WithTimeout(s.ctx, s.cfg.Timeout)
	defer cancel()
	func() {
		defer func() {
			if r := recover(); r != nil {
				s.log.Error("peer: handler panicked", "group", req.Group, "key", req.Key, "panic", r)
				resp = Response{Status: StatusError, Err: "peer: handler panicked"}
			}
		}()
		resp = s.cfg.Handler.Fill(ctx, req)
	}()
	return s.fit(req.Floor, resp)
}

// fit makes a handler's answer to a request with floor fit the protocol.
func (s *Server) fit(floor uint64, resp Response) Response {
	switch {
	case !resp.Status.valid():
		return Response{Status: StatusError, Err: fmt.Sprintf("peer: handler returned invalid %v", resp.Status)}
	case resp.Status != StatusOK:
		resp.Value = nil
	case resp.Version < floor:
		// The owner must never answer below the requester's floor.
		return Response{Status: StatusBelowFloor, Version: resp.Version}
	case len(resp.Value) > s.cfg.MaxValue:
		return Response{Status: StatusError, Err: fmt.Sprintf("peer: value of %d bytes exceeds MaxValue", len(resp.Value))}
	}
	return resp
}

// write sends resp answering request id (sealed on a keyed connection);
// false means the connection failed.
func (s *Server) write(sc *serverConn, id uint64, resp *Response) bool {
	sc.out = sc.out[:0]
	s.appendResponseFrame(sc, id, resp)
	return s.flush(sc)
}

// appendResponseFrame appends to sc.out the frame of resp answering request
// id, sealed on a keyed connection.
func (s *Server) appendResponseFrame(sc *serverConn, id uint64, resp *Response) {
	if sc.sess != nil {
		sc.plain = appendResponse(sc.plain[:0], id, resp, nil, 0, nil)
		sc.sess.sent++
		sc.out = sc.sess.seal(sc.out, sc.sess.sent, sc.plain)
		if cap(sc.plain) > keepBuf {
			sc.plain = nil
		}
		return
	}
	start := len(sc.out)
	sc.out = append(sc.out, 0, 0, 0, 0)
	sc.out = appendResponse(sc.out, id, resp, nil, 0, nil)
	putFrameHeader(sc.out[start:])
}

// flush writes sc.out; false means the connection failed.
func (s *Server) flush(sc *serverConn) bool {
	sc.nc.SetWriteDeadline(time.Now().Add(s.cfg.Timeout))
	_, err := sc.nc.Write(sc.out)
	if cap(sc.out) > keepBuf {
		sc.out = nil
	}
	if err != nil {
		if s.ctx.Err() == nil {
			s.log.Debug("peer: write", "remote", sc.nc.RemoteAddr(), "err", err)
		}
		return false
	}
	return true
}
