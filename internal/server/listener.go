package server

import (
	"crypto/tls"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
)

// connLimiter caps the connections open on a listener at max. A connection
// arriving at the cap closes the one that has waited longest without a
// request in progress (new, or idle between keep-alive requests), so a flood
// of idle or slow-header connections cannot lock probes and clients out;
// only when every connection has a request in progress (each bounded by the
// server's Read and Write timeouts) is the newcomer closed instead.
//
// golang.org/x/net/netutil.LimitListener blocks Accept at the cap instead:
// behind a flood of idle connections /readyz then waits for
// ReadHeaderTimeout, which is what TestHTTPConnectionFlood checks against.
type connLimiter struct {
	net.Listener
	max int

	evicted atomic.Uint64 // idle connections closed to make room
	refused atomic.Uint64 // newcomers closed: every connection was busy

	mu sync.Mutex
	// guarded by mu
	conns map[*limitedConn]struct{}
	tick  uint64 // orders state changes: the lowest idle tick waited longest
}

func newConnLimiter(ln net.Listener, max int) *connLimiter {
	return &connLimiter{Listener: ln, max: max, conns: make(map[*limitedConn]struct{})}
}

// limitedConn is one accepted connection.
type limitedConn struct {
	net.Conn
	l    *connLimiter
	once sync.Once
	// guarded by l.mu
	busy bool   // a request is in progress
	tick uint64 // when it was accepted or last went idle
}

func (c *limitedConn) Close() error {
	err := net.ErrClosed
	c.once.Do(func() {
		c.l.mu.Lock()
		delete(c.l.conns, c)
		c.l.mu.Unlock()
		err = c.Conn.Close()
	})
	return err
}

// Accept implements net.Listener.
func (l *connLimiter) Accept() (net.Conn, error) {
	for {
		nc, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		c := &limitedConn{Conn: nc, l: l}
		l.mu.Lock()
		var victim *limitedConn
		if len(l.conns) >= l.max {
			for v := range l.conns {
				if !v.busy && (victim == nil || v.tick < victim.tick) {
					victim = v
				}
			}
			if victim == nil {
				l.mu.Unlock()
				l.refused.Add(1)
				nc.Close()
				continue
			}
			delete(l.conns, victim) // room for c now; its Close finds it gone
		}
		l.tick++
		c.tick = l.tick
		l.conns[c] = struct{}{}
		l.mu.Unlock()
		if victim != nil {
			victim.Close()
			l.evicted.Add(1)
		}
		return c, nil
	}
}

// connState is the http.Server's ConnState hook: it tells the limiter which
// connections have a request in progress.
func (l *connLimiter) connState(nc net.Conn, st http.ConnState) {
	if tc, ok := nc.(*tls.Conn); ok {
		nc = tc.NetConn()
	}
	c, ok := nc.(*limitedConn)
	if !ok {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	switch st {
	case http.StateActive:
		c.busy = true
	case http.StateIdle:
		c.busy = false
		l.tick++
		c.tick = l.tick
	case http.StateHijacked, http.StateClosed:
		delete(l.conns, c)
	}
}

// open returns the number of connections open.
func (l *connLimiter) open() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.conns)
}
