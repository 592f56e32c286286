package gossip

import (
	"encoding/binary"
	"errors"
	"net"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
)

// fakeStreams is a Transport whose only working part is StreamCh.
type fakeStreams struct {
	memberlist.NodeAwareTransport // nil: unused
	ch                            chan net.Conn
}

func (f *fakeStreams) StreamCh() <-chan net.Conn { return f.ch }
func (f *fakeStreams) Shutdown() error           { return nil }

// addrConn is one end of a net.Pipe with a chosen remote address.
type addrConn struct {
	net.Conn
	remote net.Addr
}

func (c *addrConn) RemoteAddr() net.Addr { return c.remote }

func pipeFrom(t *testing.T, host string) (server, client net.Conn) {
	a, b := net.Pipe()
	t.Cleanup(func() { a.Close(); b.Close() })
	return &addrConn{Conn: a, remote: &net.TCPAddr{IP: net.ParseIP(host), Port: 40000}}, b
}

// TestStreamCaps: streams over MaxStreamsPerSource from one address, or
// over MaxStreams in all, are closed unread and counted; closing one frees
// its slot. Catches: an unbounded number of streams each buffering 20 MiB
// (issue 12).
func TestStreamCaps(t *testing.T) {
	inner := &fakeStreams{ch: make(chan net.Conn)}
	var refused, cut atomic.Uint64
	l := newLimitedTransport(inner, 3, 2, 1<<20, &refused, &cut, func(string, ...any) {})
	defer l.Shutdown()
	// admitted hands c to the limiter and returns what comes out, or nil
	// once the limiter has counted it refused (no timing involved).
	admitted := func(c net.Conn) net.Conn {
		r0 := refused.Load()
		inner.ch <- c
		for {
			select {
			case got := <-l.StreamCh():
				return got
			default:
			}
			if refused.Load() > r0 {
				return nil
			}
			runtime.Gosched()
		}
	}
	a1, _ := pipeFrom(t, "10.0.0.1")
	a2, _ := pipeFrom(t, "10.0.0.1")
	a3, a3c := pipeFrom(t, "10.0.0.1")
	b1, _ := pipeFrom(t, "10.0.0.2")
	b2, _ := pipeFrom(t, "10.0.0.2")
	s1, s2 := admitted(a1), admitted(a2)
	if s1 == nil || s2 == nil {
		t.Fatal("the first two streams from a source were refused")
	}
	if admitted(a3) != nil {
		t.Fatal("a third stream from the same source was admitted (MaxStreamsPerSource 2)")
	}
	a3c.SetReadDeadline(time.Now().Add(time.Second))
	if _, err := a3c.Read(make([]byte, 1)); err == nil {
		t.Fatal("the refused stream was not closed")
	}
	if admitted(b1) == nil {
		t.Fatal("another source's stream was refused")
	}
	if admitted(b2) != nil {
		t.Fatal("a fourth stream in all was admitted (MaxStreams 3)")
	}
	if got := refused.Load(); got != 2 {
		t.Fatalf("refused = %d, want 2", got)
	}
	s1.Close()
	a4, _ := pipeFrom(t, "10.0.0.1")
	if admitted(a4) == nil {
		t.Fatal("a closed stream's slot was not freed")
	}
}

// TestStreamAnnouncingTooMuchIsCut: an encrypted stream (after its label)
// that announces more than MaxStreamBytes fails its first read, before
// memberlist buffers any of it; one that announces a little is read
// through, up to MaxStreamBytes.
func TestStreamAnnouncingTooMuchIsCut(t *testing.T) {
	inner := &fakeStreams{ch: make(chan net.Conn)}
	var refused, cut atomic.Uint64
	l := newLimitedTransport(inner, 8, 8, 1024, &refused, &cut, func(string, ...any) {})
	defer l.Shutdown()
	for _, tt := range []struct {
		name     string
		announce uint32
		wantCut  bool
	}{{"20 MiB", 20 << 20, true}, {"100 bytes", 100, false}} {
		srv, cl := pipeFrom(t, "10.0.0.9")
		inner.ch <- srv
		s := <-l.StreamCh()
		hdr := append([]byte{244, 3, 'a', 'b', 'c', 10}, binary.BigEndian.AppendUint32(nil, tt.announce)...)
		go cl.Write(hdr)
		_, err := s.Read(make([]byte, 4096))
		if gotCut := errors.Is(err, errStreamTooLong); gotCut != tt.wantCut {
			t.Errorf("%s: read error %v, want cut %v", tt.name, err, tt.wantCut)
		}
		s.Close()
	}
	if cut.Load() != 1 {
		t.Errorf("StreamsCut = %d, want 1", cut.Load())
	}
}
