package gossiptest

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"syscall"
	"testing"
	"testing/synctest"
	"time"
)

const (
	fillA = "127.0.0.1:8101"
	fillB = "127.0.0.1:8102"
)

// fillPair listens at fillB on f and dials it from fillA.
func fillPair(t *testing.T, f *FillNetwork) (client, server net.Conn) {
	t.Helper()
	ln, err := f.Listen(fillB)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			t.Error(err)
		}
		accepted <- c
	}()
	client, err = f.Dialer(fillA)(t.Context(), fillB)
	if err != nil {
		t.Fatal(err)
	}
	server = <-accepted
	t.Cleanup(func() { client.Close(); server.Close() })
	return client, server
}

func readN(t *testing.T, c net.Conn, n int) string {
	t.Helper()
	buf := make([]byte, n)
	if _, err := io.ReadFull(c, buf); err != nil {
		t.Fatalf("read: %v", err)
	}
	return string(buf)
}

func TestFillConnRoundTrip(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := New(1)
		n.SetDrop(1) // packet rules do not touch streams
		f := NewFillNetwork(n)
		client, server := fillPair(t, f)
		if _, err := client.Write([]byte("ping")); err != nil { // never blocks
			t.Fatal(err)
		}
		if got := readN(t, server, 4); got != "ping" {
			t.Fatalf("server read %q", got)
		}
		if _, err := server.Write([]byte("pong")); err != nil {
			t.Fatal(err)
		}
		if got := readN(t, client, 4); got != "pong" {
			t.Fatalf("client read %q", got)
		}
		if client.RemoteAddr().String() != fillB || server.RemoteAddr().String() != fillA || client.LocalAddr().String() != fillA {
			t.Errorf("addresses: client %v->%v, server %v->%v", client.LocalAddr(), client.RemoteAddr(), server.LocalAddr(), server.RemoteAddr())
		}

		// The server closes: the client reads what was sent, then EOF, and
		// a write fails as on a connection the peer reset.
		server.Write([]byte("bye"))
		server.Close()
		if got := readN(t, client, 3); got != "bye" {
			t.Fatalf("client read %q before EOF", got)
		}
		if _, err := client.Read(make([]byte, 1)); err != io.EOF {
			t.Fatalf("read after the peer closed: %v, want io.EOF", err)
		}
		if _, err := client.Write([]byte("x")); !errors.Is(err, syscall.EPIPE) {
			t.Fatalf("write after the peer closed: %v, want EPIPE", err)
		}
		client.Close()
		if _, err := client.Read(make([]byte, 1)); !errors.Is(err, net.ErrClosed) {
			t.Fatalf("read after Close: %v, want net.ErrClosed", err)
		}
		if err := client.Close(); !errors.Is(err, net.ErrClosed) {
			t.Fatalf("second Close: %v, want net.ErrClosed", err)
		}
		if s := n.Stats(); s.StreamsOpened != 1 {
			t.Errorf("StreamsOpened = %d, want 1", s.StreamsOpened)
		}
	})
}

// TestFillConnDeadlines: a read waits exactly until its deadline on the fake
// clock; moving the deadline wakes it; Close wakes a read with no deadline.
func TestFillConnDeadlines(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		client, server := fillPair(t, NewFillNetwork(New(1)))
		start := time.Now()
		client.SetReadDeadline(start.Add(time.Second))
		_, err := client.Read(make([]byte, 1))
		if !errors.Is(err, os.ErrDeadlineExceeded) || time.Since(start) != time.Second {
			t.Fatalf("read returned %v after %v, want a deadline error after 1s", err, time.Since(start))
		}
		if err := client.SetWriteDeadline(time.Now()); err != nil {
			t.Fatal(err)
		}
		if _, err := client.Write([]byte("x")); !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("write past its deadline: %v", err)
		}

		client.SetDeadline(time.Time{})
		start = time.Now()
		done := make(chan error, 1)
		go func() { _, err := client.Read(make([]byte, 1)); done <- err }()
		synctest.Wait()
		client.SetReadDeadline(time.Now().Add(time.Minute))
		time.Sleep(30 * time.Second)
		client.SetReadDeadline(time.Now()) // wakes the read at once
		if err := <-done; !errors.Is(err, os.ErrDeadlineExceeded) || time.Since(start) != 30*time.Second {
			t.Fatalf("read returned %v after %v, want a deadline error when the deadline moved", err, time.Since(start))
		}

		go func() { _, err := server.Read(make([]byte, 1)); done <- err }()
		synctest.Wait()
		server.Close()
		if err := <-done; !errors.Is(err, net.ErrClosed) {
			t.Fatalf("read woken by Close: %v, want net.ErrClosed", err)
		}
	})
}

// TestFillDialFailures: refused at once with nobody listening; black-holed
// until ctx ends across a partition; through once the partition heals.
func TestFillDialFailures(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := New(1)
		f := NewFillNetwork(n)
		dial := f.Dialer(fillA)
		start := time.Now()
		if _, err := dial(t.Context(), fillB); !errors.Is(err, ErrRefused) || time.Since(start) != 0 {
			t.Fatalf("dial with no listener: %v after %v, want ErrRefused at once", err, time.Since(start))
		}

		ln, err := f.Listen(fillB)
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		if _, err := f.Listen(fillB); err == nil {
			t.Fatal("a second Listen on the same address succeeded")
		}
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				defer c.Close()
			}
		}()

		n.Isolate(fillB)
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		start = time.Now()
		_, err = dial(ctx, fillB)
		if !errors.Is(err, ErrPartitioned) || !errors.Is(err, context.DeadlineExceeded) || time.Since(start) != time.Second {
			t.Fatalf("dial across a partition: %v after %v, want ErrPartitioned and the ctx deadline after 1s", err, time.Since(start))
		}

		go func() { time.Sleep(200 * time.Millisecond); n.Heal() }()
		start = time.Now()
		c, err := dial(t.Context(), fillB)
		if err != nil {
			t.Fatalf("dial during a partition that heals: %v", err)
		}
		c.Close()
		if took := time.Since(start); took < 200*time.Millisecond || took > 200*time.Millisecond+Resend {
			t.Errorf("dial got through %v after it began, want within Resend of the heal at 200ms", took)
		}

		ln.Close()
		if _, err := dial(t.Context(), fillB); !errors.Is(err, ErrRefused) {
			t.Fatalf("dial after the listener closed: %v, want ErrRefused", err)
		}
		if _, err := ln.Accept(); !errors.Is(err, net.ErrClosed) {
			t.Fatalf("Accept after Close: %v, want net.ErrClosed", err)
		}
		if ln2, err := f.Listen(fillB); err != nil {
			t.Fatalf("Listen on a freed address: %v", err)
		} else {
			ln2.Close()
		}
		if s := n.Stats(); s.StreamsOpened != 1 || s.StreamsRefused != 3 {
			t.Errorf("opened %d, refused %d; want 1 and 3", s.StreamsOpened, s.StreamsRefused)
		}
	})
}

// TestFillConnPartition: an open connection across a new partition delivers
// nothing either way (not even a Close) until the heal, then everything in
// order.
func TestFillConnPartition(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := New(1)
		client, server := fillPair(t, NewFillNetwork(n))
		client.Write([]byte("a"))
		n.Partition([]string{fillA}, []string{fillB})
		if _, err := client.Write([]byte("b")); err != nil {
			t.Fatalf("write across a partition: %v, want it to succeed (and be held)", err)
		}
		client.Close()
		if got := readN(t, server, 1); got != "a" { // arrived before the cut
			t.Fatalf("read %q", got)
		}
		server.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := server.Read(make([]byte, 1)); !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("read across the partition: %v, want nothing until the deadline", err)
		}
		if _, err := server.Write([]byte("r")); err != nil {
			t.Fatalf("server write while the client's Close is held: %v", err)
		}

		server.SetReadDeadline(time.Time{})
		got := make(chan string, 1)
		go func() {
			b, err := io.ReadAll(server)
			if err != nil {
				t.Error(err)
			}
			got <- string(b)
		}()
		time.Sleep(time.Minute)
		synctest.Wait()
		select {
		case s := <-got:
			t.Fatalf("read %q through a partition", s)
		default:
		}
		start := time.Now()
		n.Heal()
		if s := <-got; s != "b" {
			t.Fatalf("after the heal the server read %q then EOF, want b", s)
		}
		if took := time.Since(start); took > Resend {
			t.Errorf("held bytes arrived %v after the heal, want within Resend (%v)", took, Resend)
		}
	})
}
