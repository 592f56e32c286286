package peer

import (
	"bufio"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"hash"
	"net"
	"sync"
	"testing"
)

// leanServer answers every request with one fixed value without allocating,
// so that a benchmark's allocs/op are the client's alone.
type leanServer struct {
	ln    net.Listener
	key   []byte
	value []byte
	wg    sync.WaitGroup
	mu    sync.Mutex
	conns []net.Conn
}

func startLean(b *testing.B, key, value []byte) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	s := &leanServer{ln: ln, key: key, value: value}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.conns = append(s.conns, nc)
			s.mu.Unlock()
			s.wg.Add(1)
			go s.serve(nc)
		}
	}()
	b.Cleanup(func() {
		ln.Close()
		s.mu.Lock()
		for _, c := range s.conns {
			c.Close()
		}
		s.mu.Unlock()
		s.wg.Wait()
	})
	return ln.Addr().String()
}

func (s *leanServer) serve(nc net.Conn) {
	defer s.wg.Done()
	br := bufio.NewReader(nc)
	var mac hash.Hash
	if s.key != nil {
		mac = hmac.New(sha256.New, s.key)
	}
	var in, out []byte
	resp := Response{Status: StatusOK, Version: 1, Value: s.value}
	for {
		var err error
		if in, err = readFrame(br, in, 1<<16); err != nil {
			return
		}
		id, n := binary.Uvarint(in[2:])
		ts := int64(binary.BigEndian.Uint64(in[2+n:]))
		var reqMAC []byte
		if s.key != nil {
			reqMAC = in[len(in)-macSize:]
		}
		out = append(out[:0], 0, 0, 0, 0)
		out = appendResponse(out, id, &resp, mac, ts, reqMAC)
		putFrameHeader(out)
		if _, err := nc.Write(out); err != nil {
			return
		}
	}
}

// BenchmarkFill measures one remote fill of a 100-byte value over loopback.
// server=lean answers without allocating, so its allocs/op are the client's;
// server=real is the full Server with a Handler.
func BenchmarkFill(b *testing.B) {
	value := make([]byte, 100)
	for _, srvKind := range []string{"lean", "real"} {
		for _, auth := range []string{"none", "sealed"} {
			if srvKind == "lean" && auth != "none" {
				continue // the lean server speaks only the plaintext protocol
			}
			b.Run("server="+srvKind+"/auth="+auth, func(b *testing.B) {
				var key []byte
				if auth == "sealed" {
					key = []byte("cluster key")
				}
				addr := benchServer(b, srvKind, key, value)
				c, err := NewClient(ClientConfig{Name: "bench", SecretKey: key})
				if err != nil {
					b.Fatal(err)
				}
				defer c.Close()
				ctx := b.Context()
				req := Request{Group: "users", Key: "user:12345"}
				b.ReportAllocs()
				for b.Loop() {
					r, err := c.Fill(ctx, addr, req)
					if err != nil || len(r.Value) != 100 {
						b.Fatal(r, err)
					}
				}
			})
		}
	}
}

func BenchmarkFillParallel(b *testing.B) {
	value := make([]byte, 100)
	for _, srvKind := range []string{"real"} {
		b.Run("server="+srvKind+"/auth=sealed", func(b *testing.B) {
			key := []byte("cluster key")
			addr := benchServer(b, srvKind, key, value)
			c, err := NewClient(ClientConfig{Name: "bench", SecretKey: key, MaxIdle: 64})
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			req := Request{Group: "users", Key: "user:12345"}
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				ctx := context.Background()
				for pb.Next() {
					if _, err := c.Fill(ctx, addr, req); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

func benchServer(b *testing.B, kind string, key, value []byte) string {
	if kind == "lean" {
		return startLean(b, key, value)
	}
	s, err := Listen(ServerConfig{Handler: okHandler(value), SecretKey: key})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	return s.Addr()
}

func BenchmarkDecodeResponse(b *testing.B) {
	msg := appendResponse(nil, 1, &Response{Status: StatusOK, Version: 9, Value: make([]byte, 100)}, nil, 0, nil)
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := decodeResponse(msg, 1<<20); err != nil {
			b.Fatal(err)
		}
	}
}
