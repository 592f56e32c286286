package peer

import (
	"bufio"
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// ServerConfig configures [Listen]. A zero field means its default.
type ServerConfig struct {
	Addr       string                 // listen address; "" = "127.0.0.1:0"; ignored with Listener
	SecretKey  []byte                 // nil = no authentication (trusted network only); else HMAC-SHA256 key
	Handler    Handler                // required
	IsMember   func(name string) bool // nil = accept any From; else a From that is not a current member is Refused
	MaxRequest int                    // bytes of a request frame body; 0 = 4 KiB
	MaxValue   int                    // bytes of a response value; 0 = 16 MiB
	Timeout    time.Duration          // per request, handler and response write; 0 = 5s
	MaxSkew    time.Duration          // accepted clock difference for request timestamps (keyed only); 0 = 30s
	Logger     *slog.Logger           // nil = discard
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
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	c.SecretKey = bytes.Clone(c.SecretKey)
	return c
}

// ServerStats counts what a Server has done since Listen.
type ServerStats struct {
	Conns         uint64 // connections accepted
	Requests      uint64 // well-formed requests decoded
	RefusedAuth   uint64 // refused: missing or wrong MAC
	RefusedReplay uint64 // refused: timestamp outside MaxSkew
	RefusedMember uint64 // refused: From is not a current member
	Errors        uint64 // answered StatusError (handler error or panic, value over MaxValue, invalid status)
	DecodeErrors  uint64 // malformed or oversized frames; each closed its connection
}

type serverStats struct {
	conns, requests                           atomic.Uint64
	refusedAuth, refusedReplay, refusedMember atomic.Uint64
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

	mu sync.Mutex
	// guarded by mu
	closed bool
	conns  map[net.Conn]struct{}
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
	s := &Server{cfg: cfg, ln: ln, log: cfg.Logger, ctx: ctx, cancel: cancel, conns: make(map[net.Conn]struct{})}
	s.wg.Add(1)
	go s.acceptLoop()
	return s, nil
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
		RefusedAuth:   s.stats.refusedAuth.Load(),
		RefusedReplay: s.stats.refusedReplay.Load(),
		RefusedMember: s.stats.refusedMember.Load(),
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
		if !s.track(nc) {
			nc.Close()
			return
		}
		s.stats.conns.Add(1)
		go s.serveConn(nc)
	}
}

// track registers nc and adds its goroutine to wg, unless the server closed.
// Adding under mu orders every wg.Add before Close's wg.Wait.
func (s *Server) track(nc net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.conns[nc] = struct{}{}
	s.wg.Add(1)
	return true
}

func (s *Server) untrack(nc net.Conn) {
	s.mu.Lock()
	delete(s.conns, nc)
	s.mu.Unlock()
}

// serverConn is one connection's reusable state; only its goroutine uses it.
type serverConn struct {
	nc  net.Conn
	br  *bufio.Reader
	mac hash.Hash // nil without a key
	in  []byte
	out []byte
	sum []byte
}

func (s *Server) serveConn(nc net.Conn) {
	defer s.wg.Done()
	defer s.untrack(nc)
	defer nc.Close()
	sc := &serverConn{nc: nc, br: bufio.NewReaderSize(nc, 4<<10)}
	if s.cfg.SecretKey != nil {
		sc.mac = hmac.New(sha256.New, s.cfg.SecretKey)
	}
	for {
		// Idle connections wait for a request without limit (Close ends
		// them); once a frame starts, all of it must arrive within Timeout.
		_, err := sc.br.Peek(1)
		if err == nil {
			nc.SetReadDeadline(time.Now().Add(s.cfg.Timeout))
			var body []byte
			body, err = readFrame(sc.br, sc.in, s.cfg.MaxRequest)
			sc.in = body
			nc.SetReadDeadline(time.Time{})
		}
		if err != nil {
			if errors.Is(err, ErrMalformed) {
				s.stats.decodeErrors.Add(1)
				s.log.Debug("peer: closing connection", "remote", nc.RemoteAddr(), "err", err)
			} else if !errors.Is(err, io.EOF) && s.ctx.Err() == nil {
				s.log.Debug("peer: read", "remote", nc.RemoteAddr(), "err", err)
			}
			return
		}
		if !s.serveOne(sc, sc.in) {
			return
		}
		if cap(sc.in) > keepBuf {
			sc.in = nil
		}
	}
}

// serveOne answers one request body; false means close the connection.
func (s *Server) serveOne(sc *serverConn, body []byte) bool {
	req, m, err := decodeRequest(body)
	if err != nil {
		s.stats.decodeErrors.Add(1)
		s.log.Debug("peer: malformed request", "remote", sc.nc.RemoteAddr(), "err", err)
		// Answer if we can, then close: the stream may be out of step.
		s.write(sc, 0, &Response{Status: StatusError, Err: "peer: malformed request"}, 0, nil)
		return false
	}
	s.stats.requests.Add(1)
	var resp Response
	if reason := s.refuse(sc, &req, &m); reason != "" {
		s.log.Debug("peer: refused", "remote", sc.nc.RemoteAddr(), "from", req.From, "reason", reason)
		resp = Response{Status: StatusRefused, Err: reason}
	} else {
		resp = s.fill(&req)
	}
	if resp.Status == StatusError {
		s.stats.errors.Add(1)
	}
	return s.write(sc, m.id, &resp, m.ts, m.mac)
}

// refuse returns why req must be refused, or "".
func (s *Server) refuse(sc *serverConn, req *Request, m *reqMeta) string {
	if sc.mac != nil {
		if m.mac == nil {
			s.stats.refusedAuth.Add(1)
			return "peer: authentication required"
		}
		sc.mac.Reset()
		sc.mac.Write(m.signed)
		sc.sum = sc.mac.Sum(sc.sum[:0])
		if !hmac.Equal(sc.sum, m.mac) {
			s.stats.refusedAuth.Add(1)
			return "peer: bad request MAC"
		}
		// Only an authenticated timestamp means anything.
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
	switch {
	case !resp.Status.valid():
		return Response{Status: StatusError, Err: fmt.Sprintf("peer: handler returned invalid %v", resp.Status)}
	case resp.Status != StatusOK:
		resp.Value = nil
	case resp.Version < req.Floor:
		// The owner must never answer below the requester's floor.
		return Response{Status: StatusBelowFloor, Version: resp.Version}
	case len(resp.Value) > s.cfg.MaxValue:
		return Response{Status: StatusError, Err: fmt.Sprintf("peer: value of %d bytes exceeds MaxValue", len(resp.Value))}
	}
	return resp
}

// write sends resp answering request id; false means the connection failed.
func (s *Server) write(sc *serverConn, id uint64, resp *Response, reqTS int64, reqMAC []byte) bool {
	sc.out = append(sc.out[:0], 0, 0, 0, 0)
	sc.out = appendResponse(sc.out, id, resp, sc.mac, reqTS, reqMAC)
	putFrameHeader(sc.out)
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
