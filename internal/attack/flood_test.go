package attack

import (
	"context"
	"encoding/binary"
	"fmt"
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
	// Meanwhile the peer fills from the node, 16 keys at once (so it keeps
	// dialing new connections: it pools 4), and writes go around.
	st0, fc0 := ms[0].n.Stats().FillServer, ms[1].n.Stats().FillClient
	rounds := 0
	for running := true; running; rounds++ {
		select {
		case <-attack:
			running = false
		default:
		}
		keys := make([]string, 16)
		for i := range keys {
			keys[i] = fmt.Sprint("k", (rounds*16+i)%200)
			ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
			err := ms[1].g.Invalidate(ctx, keys[i], 1, node.AckAll()) // gossip during the flood
			cancel()
			if err != nil {
				t.Fatalf("gossip during the flood (AckAll): %v", err)
			}
		}
		var rw sync.WaitGroup
		errs := make(chan error, len(keys))
		for _, k := range keys {
			rw.Add(1)
			go func() {
				defer rw.Done()
				if _, err := ms[1].g.Get(t.Context(), k); err != nil {
					errs <- err
				}
			}()
		}
		rw.Wait()
		close(errs)
		for err := range errs {
			t.Fatalf("a read on the peer during the flood: %v", err)
		}
	}
	wg.Wait() // every attacking connection is dialed (and most closed)
	close(done)
	st, fc := ms[0].n.Stats().FillServer, ms[1].n.Stats().FillClient
	mu.Lock()
	for _, c := range open {
		c.Close()
	}
	mu.Unlock()
	t.Logf("%d idle connections (%d dial errors), %d rounds of 16 writes and 16 parallel reads on the peer; owner: %d fills served, %d evicted, %d refused at the cap, %d closed idle; peer: %d fills, %d new connections, %d dial, %d io, %d timeout errors",
		total, dialErrs, rounds, st.Requests-st0.Requests, st.Evicted, st.RefusedConns, st.IdleClosed,
		fc.Fills-fc0.Fills, fc.Dials-fc0.Dials, fc.DialErrors-fc0.DialErrors, fc.IOErrors-fc0.IOErrors, fc.TimeoutErrors-fc0.TimeoutErrors)
	if st.Requests == st0.Requests || fc.Dials == fc0.Dials {
		t.Error("the owner served no fill, or the peer opened no connection, during the flood")
	}
	if d := (fc.DialErrors + fc.IOErrors + fc.TimeoutErrors) - (fc0.DialErrors + fc0.IOErrors + fc0.TimeoutErrors); d > 0 {
		t.Errorf("%d of the peer's fills failed during the flood", d)
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
}
