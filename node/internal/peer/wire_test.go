package peer

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"reflect"
	"runtime"
	"strings"
	"testing"
)

var sampleReq = Request{Group: "users", Key: "123", From: "api-7", Floor: 42}

func encReq(t testing.TB, id uint64, ts int64, req Request, key []byte) []byte {
	t.Helper()
	if key == nil {
		return appendRequest(nil, id, ts, &req, nil)
	}
	return appendRequest(nil, id, ts, &req, hmac.New(sha256.New, key))
}

func TestRequestRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		req  Request
		key  []byte
	}{
		{"plain", sampleReq, nil},
		{"keyed", sampleReq, []byte("secret")},
		{"empty strings", Request{}, nil},
		{"big floor", Request{Group: "g", Key: strings.Repeat("k", 300), From: "f", Floor: 1<<64 - 1}, []byte("s")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := encReq(t, 7, -5, tt.req, tt.key)
			got, m, err := decodeRequest(b)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.req || m.id != 7 || m.ts != -5 {
				t.Fatalf("got %+v id=%d ts=%d, want %+v id=7 ts=-5", got, m.id, m.ts, tt.req)
			}
			if (m.mac != nil) != (tt.key != nil) {
				t.Fatalf("mac present = %v, key set = %v", m.mac != nil, tt.key != nil)
			}
			if tt.key != nil {
				h := hmac.New(sha256.New, tt.key)
				h.Write(m.signed)
				if !hmac.Equal(h.Sum(nil), m.mac) {
					t.Fatal("MAC does not cover the signed bytes")
				}
			}
		})
	}
}

func TestResponseRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		resp Response
		key  []byte
	}{
		{"ok", Response{Status: StatusOK, Version: 9, Value: []byte("v")}, nil},
		{"ok keyed", Response{Status: StatusOK, Version: 9, Value: bytes.Repeat([]byte{1}, 1000)}, []byte("s")},
		{"empty value", Response{Status: StatusOK, Value: []byte{}}, nil},
		{"refused", Response{Status: StatusRefused, Value: []byte{}, Err: "no"}, []byte("s")},
		{"below floor", Response{Status: StatusBelowFloor, Version: 3, Value: []byte{}}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b []byte
			if tt.key != nil {
				b = appendResponse(nil, 5, &tt.resp, hmac.New(sha256.New, tt.key), 77, []byte("reqmac"))
			} else {
				b = appendResponse(nil, 5, &tt.resp, nil, 0, nil)
			}
			got, m, err := decodeResponse(b, 1<<20)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.resp) || m.id != 5 {
				t.Fatalf("got %+v id=%d, want %+v id=5", got, m.id, tt.resp)
			}
			if tt.key != nil {
				h := hmac.New(sha256.New, tt.key)
				sumResponse(h, m.signed, 77, []byte("reqmac"))
				if !hmac.Equal(h.Sum(nil), m.mac) {
					t.Fatal("MAC does not bind the request timestamp and MAC")
				}
			}
		})
	}
}

func TestErrStringCut(t *testing.T) {
	r := Response{Status: StatusError, Err: strings.Repeat("e", 5000)}
	got, _, err := decodeResponse(appendResponse(nil, 1, &r, nil, 0, nil), 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Err) != maxErrLen {
		t.Fatalf("Err is %d bytes on the wire, want it cut to %d", len(got.Err), maxErrLen)
	}
}

func TestDecodeRejects(t *testing.T) {
	req := encReq(t, 1, 1, sampleReq, []byte("k"))
	resp := appendResponse(nil, 1, &Response{Status: StatusOK, Value: []byte("abc")}, nil, 0, nil)
	with := func(b []byte, i int, v byte) []byte { b = bytes.Clone(b); b[i] = v; return b }

	// A value length that claims 1 GiB in a 20-byte message.
	huge := []byte{FormatVersion, byte(StatusOK), 1, 0}
	huge = binary.AppendUvarint(huge, 1<<30)
	overflow := []byte{FormatVersion, byte(StatusOK), 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}

	tests := []struct {
		name  string
		isReq bool
		b     []byte
	}{
		{"req empty", true, nil},
		{"req version", true, with(req, 0, 2)},
		{"req type", true, with(req, 1, 0x02)},
		{"req trailing", true, append(bytes.Clone(req), 0)},
		{"req flag without mac", true, with(encReq(t, 1, 1, sampleReq, nil), 1, typeFill|flagMAC)},
		{"resp empty", false, nil},
		{"resp version", false, with(resp, 0, 0)},
		{"resp status zero", false, with(resp, 1, 0)},
		{"resp status unknown", false, with(resp, 1, byte(statusEnd))},
		{"resp trailing", false, append(bytes.Clone(resp), 0)},
		{"resp value over limit", false, huge},
		{"resp varint overflow", false, overflow},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var err error
			if tt.isReq {
				_, _, err = decodeRequest(tt.b)
			} else {
				_, _, err = decodeResponse(tt.b, 1<<20)
			}
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("err = %v, want ErrMalformed", err)
			}
		})
	}
	// Every strict prefix of a valid message is truncated.
	for i := range len(req) {
		if _, _, err := decodeRequest(req[:i]); !errors.Is(err, ErrMalformed) {
			t.Fatalf("request prefix %d/%d: err = %v", i, len(req), err)
		}
	}
	for i := range len(resp) {
		if _, _, err := decodeResponse(resp[:i], 1<<20); !errors.Is(err, ErrMalformed) {
			t.Fatalf("response prefix %d/%d: err = %v", i, len(resp), err)
		}
	}
}

func TestDecodeValueLimitBeforeAlloc(t *testing.T) {
	huge := []byte{FormatVersion, byte(StatusOK), 1, 0}
	huge = binary.AppendUvarint(huge, 1<<30)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range 10 {
		if _, _, err := decodeResponse(huge, 1<<20); !errors.Is(err, ErrMalformed) {
			t.Fatal(err)
		}
	}
	runtime.ReadMemStats(&after)
	// Only the error messages are allocated, never the announced 1 GiB.
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 1<<20 {
		t.Fatalf("rejecting 10 oversized values allocated %d bytes", grew)
	}
}

func TestReadFrameRejectsSize(t *testing.T) {
	tests := []struct {
		name string
		hdr  uint32
	}{{"zero", 0}, {"over limit", 4097}, {"huge", 0xFFFFFFFF}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := binary.BigEndian.AppendUint32(nil, tt.hdr)
			buf, err := readFrame(bytes.NewReader(b), nil, 4096)
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("err = %v, want ErrMalformed", err)
			}
			if cap(buf) != 0 {
				t.Fatalf("allocated %d bytes for a rejected frame", cap(buf))
			}
		})
	}
}

func FuzzDecodeRequest(f *testing.F) {
	f.Add(encReq(f, 1, 1, sampleReq, nil))
	f.Add(encReq(f, 1<<40, -1, sampleReq, []byte("key")))
	f.Add(encReq(f, 0, 0, Request{}, nil))
	f.Add([]byte{FormatVersion, typeFill | flagMAC})
	f.Fuzz(func(t *testing.T, b []byte) {
		req, m, err := decodeRequest(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		// Round trip: what decoded re-encodes to an equal message.
		enc := appendRequest(nil, m.id, m.ts, &req, nil)
		req2, m2, err := decodeRequest(enc)
		if err != nil || req2 != req || m2.id != m.id || m2.ts != m.ts {
			t.Fatalf("re-decode: %+v %+v %v, want %+v %+v", req2, m2, err, req, m)
		}
		if m.mac != nil && len(m.mac) != macSize {
			t.Fatalf("mac of %d bytes", len(m.mac))
		}
	})
}

func FuzzDecodeResponse(f *testing.F) {
	f.Add(appendResponse(nil, 1, &Response{Status: StatusOK, Version: 3, Value: []byte("hello")}, nil, 0, nil))
	f.Add(appendResponse(nil, 2, &Response{Status: StatusRefused, Err: "no"}, hmac.New(sha256.New, []byte("k")), 5, nil))
	f.Add(appendResponse(nil, 0, &Response{Status: StatusBelowFloor, Version: 1 << 50}, nil, 0, nil))
	f.Add([]byte{FormatVersion, byte(StatusOK), 0, 0, 0x80, 0x80, 0x80, 0x80, 0x04})
	const limit = 4096
	f.Fuzz(func(t *testing.T, b []byte) {
		r, m, err := decodeResponse(b, limit)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		if len(r.Value) > limit || len(r.Err) > maxErrLen || !r.Status.valid() {
			t.Fatalf("accepted out-of-limit response %+v", r)
		}
		enc := appendResponse(nil, m.id, &r, nil, 0, nil)
		r2, m2, err := decodeResponse(enc, limit)
		if err != nil || !reflect.DeepEqual(r2, r) || m2.id != m.id {
			t.Fatalf("re-decode: %+v %v, want %+v", r2, err, r)
		}
	})
}
