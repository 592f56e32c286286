package attack

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/nearcache/nearcache/node"
)

// TestGossipStreamFlood is issue 12's memory attack: memberlist buffers a
// whole encrypted TCP stream (up to 20 MiB) before it checks the key, so
// four connections took a node to 302 MiB. 50 connections at once, each
// announcing and sending 20 MiB under the cluster's label, must leave the
// process's RSS within 32 MiB of where it was, and the cluster working.
// Fails with the limits removed (MaxStreamBytes and the stream caps):
// checked with MaxStreamBytes at 20 MiB, the peak grows by over 100 MiB.
func TestGossipStreamFlood(t *testing.T) {
	src := newSource()
	src.put("k", "v1", 1)
	ms := startCluster(t, 2, opts{keys: [][]byte{key32(1)}, src: src})
	target := ms[0].gossip
	runtimeGC()
	rss0, g0 := rssBytes(t), goroutines()

	const conns, perConn = 50, 20 << 20
	chunk := make([]byte, 64<<10)
	stop := make(chan struct{})
	peak := peakRSS(t, stop)
	var wg sync.WaitGroup
	var mu sync.Mutex
	sent, cut := int64(0), 0
	for range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := net.Dial("tcp", target)
			if err != nil {
				return
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(20 * time.Second))
			hdr := []byte{244, byte(len("attack"))}
			hdr = append(hdr, "attack"...)
			hdr = append(hdr, 10) // memberlist encryptMsg
			hdr = binary.BigEndian.AppendUint32(hdr, perConn)
			if _, err := c.Write(hdr); err != nil {
				return
			}
			n := int64(0)
			for n < perConn {
				w, err := c.Write(chunk)
				n += int64(w)
				if err != nil {
					break
				}
			}
			mu.Lock()
			sent += n
			if n < perConn {
				cut++
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	close(stop)
	peakRSS := <-peak
	t.Logf("50 streams of 20 MiB: %s written in all, %d cut short by the node; RSS %s before, peak %s (+%s)",
		mib(sent), cut, mib(rss0), mib(peakRSS), mib(peakRSS-rss0))
	if grow := peakRSS - rss0; grow >= 32<<20 {
		t.Errorf("RSS grew by %s under the flood, want < 32 MiB", mib(grow))
	}
	// The cluster still works: an acknowledged write reaches the other node.
	src.put("k", "v2", 2)
	if _, err := ms[1].g.Get(t.Context(), "k"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if err := ms[0].g.Invalidate(ctx, "k", 2, node.AckAll()); err != nil {
		t.Fatalf("AckAll after the flood: %v", err)
	}
	waitFor(t, 10*time.Second, "goroutines back to their count before the flood", func() bool { return goroutines() <= g0+5 })
	t.Logf("goroutines %d before, %d after; RSS after %s", g0, goroutines(), mib(rssBytes(t)))
}

// TestIdleFillConnectionFlood is issue 12's file-descriptor attack: 20,000
// connections to the fill port that never send a byte (no idle deadline and
// no cap used to keep every one open). The node must keep serving fills and
// gossip meanwhile: at MaxConns it evicts the oldest connection that has
// completed no request, and FirstFrameTimeout closes the rest. Fails with the
// eviction removed (new connections refused at the cap, fills from a peer
// that needs a new connection fail) or with no cap (the fds run out: the
// process limit here is 20,000).
func TestIdleFillConnectionFlood(t *testing.T) {
	src := newSource()
	for i := range 200 {
		src.put(fmt.Sprint("k", i), "v1", 1)
	}
	ms := startCluster(t, 2, opts{keys: [][]byte{key32(2)}, src: src})
	runtimeGC()
	rss0, g0 := rssBytes(t), goroutines()
	target := ms[0].fill

	const total, concurrent = 20000, 1500
	sem := make(chan struct{}, concurrent)
	var wg sync.WaitGroup
	var mu sync.Mutex
	dialErrs := 0
	var open []net.Conn
	done := make(chan struct{})
	attack := make(chan struct{})
	go func() {
		defer close(attack)
		for range total {
			sem <- struct{}{}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				c, err := net.Dial("tcp", target)
				if err != nil {
					mu.Lock()
					dialErrs++
					mu.Unlock()
					return
				}
				mu.Lock()
				open = append(open, c)
				mu.Unlock()
				// Idle: wait for the node to close it (eviction or
				// FirstFrameTimeout), or for the end of the test.
				c.SetReadDeadline(time.Now().Add(30 * time.Second))
				var b [1]byte
				c.Read(b[:])
				c.Close()
			}()
		}
	}()
	// Meanwhile a peer fills from the node (new connections included: the
	// client's pool is emptied before every round), and writes go around.
	fills0 := ms[0].n.Stats().FillServer.Requests
	rounds := 0
	for {
		select {
		case <-attack:
		default:
		}
		ms[1].n.Stats() // keep the compiler honest about ms[1]
		for i := range 200 {
			if _, err := ms[1].g.Get(t.Context(), fmt.Sprint("k", i)); err != nil {
				t.Fatalf("a read on the peer during the flood: %v", err)
			}
		}
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		err := ms[1].g.Invalidate(ctx, fmt.Sprint("k", rounds%200), 1, node.AckAll())
		cancel()
		if err != nil {
			t.Fatalf("gossip during the flood (AckAll): %v", err)
		}
		rounds++
		select {
		case <-attack:
		default:
			continue
		}
		break
	}
	wg.Wait() // every attacking connection is dialed (and most closed)
	close(done)
	st := ms[0].n.Stats().FillServer
	fc := ms[1].n.Stats().FillClient
	mu.Lock()
	for _, c := range open {
		c.Close()
	}
	mu.Unlock()
	t.Logf("%d idle connections (%d dial errors), %d read rounds on the peer; owner: %d fills served, %d evicted, %d refused at the cap, %d closed idle; peer: %d fills, %d dial errors, %d io errors",
		total, dialErrs, rounds, st.Requests-fills0, st.Evicted, st.RefusedConns, st.IdleClosed, fc.Fills, fc.DialErrors, fc.IOErrors)
	if st.Requests == fills0 {
		t.Error("the owner served no fill during the flood")
	}
	if st.Evicted == 0 {
		t.Error("no connection was evicted: the cap was never reached")
	}
	if dialErrs > total/100 {
		t.Errorf("%d of %d dials failed (the node ran out of descriptors?)", dialErrs, total)
	}
	waitFor(t, 15*time.Second, "goroutines back to their count before the flood", func() bool { return goroutines() <= g0+5 })
	runtimeGC()
	t.Logf("RSS %s before, %s after; goroutines %d before, %d after", mib(rss0), mib(rssBytes(t)), g0, goroutines())
	_ = errors.Is
	_ = io.EOF
}
