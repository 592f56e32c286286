package peer

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
)

// batchHandler answers every key "v-<key>" at version 10 (a key starting
// with "gone" is not found), counting its batch calls.
type batchHandler struct {
	calls, keys atomic.Int32
}

func (h *batchHandler) answer(key string) Response {
	if strings.HasPrefix(key, "gone") {
		return Response{Status: StatusNotFound}
	}
	return Response{Status: StatusOK, Version: 10, Value: []byte("v-" + key)}
}

func (h *batchHandler) Fill(_ context.Context, req *Request) Response { return h.answer(req.Key) }

func (h *batchHandler) FillMany(_ context.Context, req *BatchRequest) []Response {
	h.calls.Add(1)
	h.keys.Add(int32(len(req.Keys)))
	out := make([]Response, len(req.Keys))
	for i, k := range req.Keys {
		out[i] = h.answer(k)
	}
	return out
}

// TestFillManyOneRoundTrip: a batch is one FillMany call on the client, one
// BatchHandler call per frame on the server, and its answers come back in
// order, floors applied per key, plain and keyed. With a small MaxRequest
// the batch is split into frames, still in one round trip (one Write).
func TestFillManyOneRoundTrip(t *testing.T) {
	keys := make([]string, 100)
	floors := make([]uint64, 100)
	for i := range keys {
		keys[i] = fmt.Sprintf("key-%03d", i)
	}
	keys[7] = "gone-7"
	floors[9] = 11 // above the owner's version 10: below floor
	for _, tc := range []struct {
		name       string
		key        []byte
		maxRequest int
		frames     int32
	}{
		{"plain", nil, 0, 1},
		{"keyed", []byte("shared secret"), 0, 1},
		{"keyed-split", []byte("shared secret"), 256, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := &batchHandler{}
			srv := listen(t, ServerConfig{Handler: h, SecretKey: tc.key, MaxRequest: tc.maxRequest})
			c := client(t, ClientConfig{Name: "api-1", SecretKey: tc.key, MaxRequest: tc.maxRequest})
			got, err := c.FillMany(t.Context(), srv.Addr(), BatchRequest{Group: "g", Keys: keys, Floors: floors})
			if err != nil {
				t.Fatal(err)
			}
			for i, k := range keys {
				want := h.answer(k)
				if i == 9 {
					want = Response{Status: StatusBelowFloor, Version: 10}
				}
				if got[i].Status != want.Status || got[i].Version != want.Version || string(got[i].Value) != string(want.Value) {
					t.Fatalf("key %d (%s): got %v v%d %q, want %v v%d %q", i, k, got[i].Status, got[i].Version, got[i].Value, want.Status, want.Version, want.Value)
				}
			}
			if tc.frames > 0 && h.calls.Load() != tc.frames {
				t.Errorf("%d handler calls, want %d", h.calls.Load(), tc.frames)
			}
			if tc.frames == 0 && h.calls.Load() < 2 {
				t.Errorf("%d handler calls with MaxRequest %d: want the batch split into frames", h.calls.Load(), tc.maxRequest)
			}
			if h.keys.Load() != 100 {
				t.Errorf("handler saw %d keys, want 100", h.keys.Load())
			}
			if st := c.Stats(); st.Batches != 1 || st.Dials != 1 {
				t.Errorf("client stats %+v: want one batch on one connection", st)
			}
			// The connection stays in step: a single fill after the batch.
			r, err := c.Fill(t.Context(), srv.Addr(), Request{Group: "g", Key: "after"})
			if err != nil || string(r.Value) != "v-after" {
				t.Fatalf("Fill after FillMany: %+v, %v", r, err)
			}
			if st := c.Stats(); st.Dials != 1 {
				t.Errorf("%d dials: the batch left its connection out of step", st.Dials)
			}
		})
	}
}

// TestFillManyWithoutBatchHandler: a Handler that is not a BatchHandler
// still answers a batch, one Fill per key.
func TestFillManyWithoutBatchHandler(t *testing.T) {
	var calls atomic.Int32
	srv := listen(t, ServerConfig{Handler: HandlerFunc(func(_ context.Context, req *Request) Response {
		calls.Add(1)
		return Response{Status: StatusOK, Version: req.Floor + 1, Value: []byte(req.Key)}
	})})
	c := client(t, ClientConfig{})
	got, err := c.FillMany(t.Context(), srv.Addr(), BatchRequest{Group: "g", Keys: []string{"a", "b", "c"}, Floors: []uint64{1, 2, 3}})
	if err != nil {
		t.Fatal(err)
	}
	for i, k := range []string{"a", "b", "c"} {
		if got[i].Status != StatusOK || string(got[i].Value) != k || got[i].Version != uint64(i+2) {
			t.Errorf("key %s: %+v", k, got[i])
		}
	}
	if calls.Load() != 3 {
		t.Errorf("%d Fill calls, want 3", calls.Load())
	}
}

// TestFillManyRefusedNonMember: the membership check refuses every key of a
// batch from a non-member, as it does a single fill.
func TestFillManyRefusedNonMember(t *testing.T) {
	h := &batchHandler{}
	srv := listen(t, ServerConfig{Handler: h, IsMember: func(string) bool { return false }})
	c := client(t, ClientConfig{})
	got, err := c.FillMany(t.Context(), srv.Addr(), BatchRequest{Group: "g", Keys: []string{"a", "b"}, Floors: []uint64{0, 0}})
	if err != nil {
		t.Fatal(err)
	}
	for i := range got {
		if got[i].Status != StatusRefused {
			t.Errorf("key %d: %v, want refused", i, got[i].Status)
		}
	}
	if h.calls.Load() != 0 {
		t.Errorf("the handler ran %d times for a non-member", h.calls.Load())
	}
}

func TestFillManyBadArguments(t *testing.T) {
	c := client(t, ClientConfig{})
	if _, err := c.FillMany(t.Context(), "127.0.0.1:1", BatchRequest{Keys: []string{"a"}}); err == nil {
		t.Error("FillMany with no floors: no error")
	}
	if _, err := c.FillMany(t.Context(), "127.0.0.1:1", BatchRequest{}); err == nil {
		t.Error("FillMany with no keys: no error")
	}
}

func TestChunksFitTheLimit(t *testing.T) {
	req := &BatchRequest{Group: "g", From: "me"}
	for i := range 1500 {
		req.Keys = append(req.Keys, strings.Repeat("k", i%40+1))
		req.Floors = append(req.Floors, 1<<62)
	}
	long := strings.Repeat("L", 3000)
	req.Keys = append(req.Keys, long)
	req.Floors = append(req.Floors, 1<<62)
	next := 0
	for _, ch := range chunks(req, 4096) {
		if ch[0] != next || ch[1] <= ch[0] || ch[1]-ch[0] > MaxBatchKeys {
			t.Fatalf("chunk %v after %d", ch, next)
		}
		next = ch[1]
		b := appendBatchRequest(nil, 1<<60, -1, req, ch[0], ch[1])
		if len(b) > 4096 && ch[1]-ch[0] > 1 {
			t.Fatalf("chunk %v encodes to %d bytes, over the limit", ch, len(b))
		}
		got, _, err := decodeBatchRequest(b)
		if err != nil || len(got.Keys) != ch[1]-ch[0] || got.Keys[0] != req.Keys[ch[0]] {
			t.Fatalf("chunk %v does not decode: %v", ch, err)
		}
	}
	if next != len(req.Keys) {
		t.Fatalf("chunks end at %d of %d keys", next, len(req.Keys))
	}
}

func FuzzDecodeBatchRequest(f *testing.F) {
	req := &BatchRequest{Group: "g", From: "n1", Keys: []string{"a", "bb"}, Floors: []uint64{0, 1 << 50}}
	f.Add(appendBatchRequest(nil, 3, 42, req, 0, 2))
	f.Add([]byte{FormatVersion, typeFillMany, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0x03})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, m, err := decodeBatchRequest(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		if len(r.Keys) == 0 || len(r.Keys) > MaxBatchKeys || len(r.Keys) != len(r.Floors) {
			t.Fatalf("accepted a batch of %d keys, %d floors", len(r.Keys), len(r.Floors))
		}
		enc := appendBatchRequest(nil, m.id, m.ts, &r, 0, len(r.Keys))
		r2, _, err := decodeBatchRequest(enc)
		if err != nil || len(r2.Keys) != len(r.Keys) || r2.Group != r.Group || r2.From != r.From {
			t.Fatalf("re-decode: %+v %v, want %+v", r2, err, r)
		}
	})
}
