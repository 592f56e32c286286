package peer

import (
	"encoding/binary"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"runtime"
	"syscall"
	"testing"
	"time"
)

func TestMalformedInputClosesConn(t *testing.T) {
	frame := func(body []byte) []byte {
		return append(binary.BigEndian.AppendUint32(nil, uint32(len(body))), body...)
	}
	rnd := rand.New(rand.NewPCG(1, 2))
	random := make([]byte, 512)
	for i := range random {
		random[i] = byte(rnd.UintN(256))
	}
	valid := encReq(t, 1, time.Now().UnixNano(), sampleReq, nil)
	tests := []struct {
		name       string
		send       []byte
		halfClose  bool // close our write side after sending (a truncated frame)
		wantAnswer bool // the server answers StatusError before closing
	}{
		{name: "random bytes", send: random},
		{name: "huge length header", send: []byte{0xFF, 0xFF, 0xFF, 0xFF, 1, 2, 3}},
		{name: "length over MaxRequest", send: binary.BigEndian.AppendUint32(nil, 4097)},
		{name: "zero length", send: []byte{0, 0, 0, 0}},
		{name: "truncated frame", send: frame(valid)[:10], halfClose: true},
		{name: "garbage body", send: frame([]byte{1, 2, 3}), wantAnswer: true},
		{name: "unknown version", send: frame(append([]byte{9}, valid[1:]...)), wantAnswer: true},
		{name: "trailing byte", send: frame(append(valid, 0)), wantAnswer: true},
		{name: "valid then garbage", send: append(frame(valid), frame([]byte{0})...), wantAnswer: true},
	}
	srv := listen(t, ServerConfig{Handler: okHandler([]byte("v")), MaxRequest: 4096})
	good := client(t, ClientConfig{})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := srv.Stats().DecodeErrors
			nc, err := net.Dial("tcp", srv.Addr())
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			nc.SetDeadline(time.Now().Add(watchdog))
			if _, err := nc.Write(tt.send); err != nil {
				t.Fatal(err)
			}
			if tt.halfClose {
				nc.(*net.TCPConn).CloseWrite()
			}
			// Read everything the server sends until it closes: the frames
			// must decode and the last must be StatusError if one is wanted.
			var last Response
			for {
				b, err := readFrame(nc, nil, 1<<20)
				if err != nil {
					if !errors.Is(err, io.EOF) && !isReset(err) {
						t.Fatalf("want the server to close the connection, got %v", err)
					}
					break
				}
				if last, _, err = decodeResponse(b, 1<<20); err != nil {
					t.Fatal(err)
				}
			}
			if tt.wantAnswer && last.Status != StatusError {
				t.Fatalf("last answer %v, want StatusError before the close", last.Status)
			}
			if !tt.halfClose && srv.Stats().DecodeErrors != before+1 {
				t.Fatalf("DecodeErrors %d, want %d", srv.Stats().DecodeErrors, before+1)
			}
			// The server still serves everybody else.
			if got, err := good.Fill(t.Context(), srv.Addr(), Request{}); err != nil || got.Status != StatusOK {
				t.Fatalf("after malformed input: %v %v", got.Status, err)
			}
		})
	}
}

func TestSlowFrameTimesOut(t *testing.T) {
	srv := listen(t, ServerConfig{Handler: okHandler(nil), Timeout: 50 * time.Millisecond})
	tests := []struct {
		name string
		send []byte
	}{
		{"partial header", []byte{0, 0}},
		{"partial body", []byte{0, 0, 0, 10, 1, 2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			nc, err := net.Dial("tcp", srv.Addr())
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			nc.Write(tt.send)
			// We never finish the frame (nor half-close): only the server's
			// Timeout can end this read.
			nc.SetReadDeadline(time.Now().Add(watchdog))
			if n, err := nc.Read(make([]byte, 1)); n != 0 || (!errors.Is(err, io.EOF) && !isReset(err)) {
				t.Fatalf("read %d, %v; want the server to drop a stalled frame", n, err)
			}
		})
	}
}

func isReset(err error) bool { return errors.Is(err, syscall.ECONNRESET) }

func TestHugeHeaderBoundedMemory(t *testing.T) {
	srv := listen(t, ServerConfig{Handler: okHandler(nil)})
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range 20 {
		nc, err := net.Dial("tcp", srv.Addr())
		if err != nil {
			t.Fatal(err)
		}
		nc.SetDeadline(time.Now().Add(watchdog))
		nc.Write([]byte{0x7F, 0xFF, 0xFF, 0xFF})
		io.Copy(io.Discard, nc) // until the server closes it
		nc.Close()
	}
	runtime.ReadMemStats(&after)
	// 20 frames announcing 2 GiB each: allocating any would show as 2 GiB+.
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 16<<20 {
		t.Fatalf("allocated %d bytes answering 20 oversized frame headers", grew)
	}
	if s := srv.Stats(); s.DecodeErrors != 20 {
		t.Fatalf("DecodeErrors = %d, want 20", s.DecodeErrors)
	}
}

// FuzzServer feeds arbitrary bytes to a live server, plain and keyed: it
// must never panic, must answer only with well-formed responses, and must
// close the connection at the end of input.
func FuzzServer(f *testing.F) {
	frame := func(body []byte) []byte {
		return append(binary.BigEndian.AppendUint32(nil, uint32(len(body))), body...)
	}
	key := []byte("k")
	now := time.Now().UnixNano()
	f.Add(frame(encReq(f, 1, now, sampleReq, nil)))
	f.Add(frame(encReq(f, 1, now, sampleReq, key)))
	f.Add(append(frame(encReq(f, 1, now, Request{}, nil)), frame(encReq(f, 2, now, Request{Key: "x"}, key))...))
	f.Add([]byte{0, 0, 0, 1, 1})
	f.Add([]byte{0xFF, 0xFF, 0xFF, 0xFF})
	var servers []*Server
	for _, k := range [][]byte{nil, key} {
		s, err := Listen(ServerConfig{Handler: okHandler([]byte("v")), SecretKey: k, MaxRequest: 1024})
		if err != nil {
			f.Fatal(err)
		}
		f.Cleanup(func() { s.Close() })
		servers = append(servers, s)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		for _, s := range servers {
			nc, err := net.Dial("tcp", s.Addr())
			if err != nil {
				t.Fatal(err)
			}
			nc.SetDeadline(time.Now().Add(watchdog))
			nc.Write(in) // may fail once the server gave up on us
			nc.(*net.TCPConn).CloseWrite()
			for {
				b, err := readFrame(nc, nil, 1<<20)
				if err != nil {
					if !errors.Is(err, io.EOF) && !isReset(err) {
						t.Fatalf("want the connection closed at end of input, got %v", err)
					}
					break
				}
				if _, _, err := decodeResponse(b, 1<<20); err != nil {
					t.Fatalf("server sent a malformed response: %v", err)
				}
			}
			nc.Close()
		}
	})
}
