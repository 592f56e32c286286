package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/nearcache/nearcache/loader"
	"github.com/nearcache/nearcache/node"
)

// TestAPIWriteThenRead walks the key endpoints in order; each step depends on
// the previous ones, so the table runs in sequence.
func TestAPIWriteThenRead(t *testing.T) {
	f := newFixture(t, nil)
	const k = "/v1/groups/items/keys/user%2F42" // an escaped slash stays in the key
	steps := []struct {
		name        string
		method, url string
		body        string
		wantCode    int
		wantValue   string // GET only
		wantVersion uint64
	}{
		{name: "insert", method: "PUT", url: k, body: `{"value":"v1"}`, wantCode: 200, wantVersion: 1},
		{name: "read miss", method: "GET", url: k, wantCode: 200, wantValue: "v1", wantVersion: 1},
		{name: "read hit", method: "GET", url: k + "?mode=cached", wantCode: 200, wantValue: "v1", wantVersion: 1},
		// Without the invalidation after the write, the cached v1 would be served here.
		{name: "update", method: "PUT", url: k, body: `{"value":"v2"}`, wantCode: 200, wantVersion: 2},
		{name: "read own write", method: "GET", url: k, wantCode: 200, wantValue: "v2", wantVersion: 2},
		{name: "verified", method: "GET", url: k + "?mode=verified", wantCode: 200, wantValue: "v2", wantVersion: 2},
		{name: "authoritative", method: "GET", url: k + "?mode=authoritative", wantCode: 200, wantValue: "v2", wantVersion: 2},
		{name: "invalidate", method: "POST", url: k + "/invalidate?version=2", wantCode: 200, wantVersion: 2},
		{name: "invalidate ack all", method: "POST", url: k + "/invalidate?version=2&ack=all", wantCode: 200, wantVersion: 2},
		// A floor above what the source holds: the node refuses the older row (G1).
		{name: "invalidate ahead of source", method: "POST", url: k + "/invalidate?version=9", wantCode: 200, wantVersion: 9},
		{name: "source lags the floor", method: "GET", url: k, wantCode: http.StatusServiceUnavailable},
	}
	for _, st := range steps {
		code, body, resp := do(t, f.ts.URL, st.method, st.url, st.body)
		if code != st.wantCode {
			t.Fatalf("%s: %s %s = %d %s, want %d", st.name, st.method, st.url, code, body, st.wantCode)
		}
		if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("%s: Content-Type %q, want application/json", st.name, ct)
		}
		if code != 200 {
			if e := decode[errorResponse](t, body); e.Error == "" {
				t.Errorf("%s: error body %s has no message", st.name, body)
			}
			continue
		}
		switch st.method {
		case "GET":
			got := decode[getResponse](t, body)
			if got.Key != "user/42" || got.Value != st.wantValue || got.Version != st.wantVersion {
				t.Errorf("%s: got %+v, want key user/42 value %q version %d", st.name, got, st.wantValue, st.wantVersion)
			}
		default:
			got := decode[writeResponse](t, body)
			if got.Version != st.wantVersion || len(got.NotAcknowledged) != 0 || got.InvalidationError != "" {
				t.Errorf("%s: got %+v, want version %d and nothing unacknowledged", st.name, got, st.wantVersion)
			}
		}
	}
	// The modes really took their paths through the node (verified and
	// authoritative reads bypass the cache), and every write invalidated.
	// (Hits are not asserted: the store applies sets asynchronously.)
	g := f.n.Stats().Groups[0]
	if g.Name != "items" || g.Bypass != 2 || g.InvalidationsSent != 5 {
		t.Errorf("items stats = bypass %d sent %d, want 2, 5", g.Bypass, g.InvalidationsSent)
	}
}

func TestAPIErrors(t *testing.T) {
	f := newFixture(t, nil)
	if code, b, _ := do(t, f.ts.URL, "PUT", "/v1/groups/items/keys/k", `{"value":"x"}`); code != 200 {
		t.Fatalf("seed PUT = %d %s", code, b)
	}
	long := strings.Repeat("a", node.MaxKeyLen+1)
	tests := []struct {
		name, method, path, body string
		wantCode                 int
		wantErr                  string
		wantAllow                string
	}{
		{name: "bad mode", method: "GET", path: "/v1/groups/items/keys/k?mode=fresh", wantCode: 400, wantErr: `mode "fresh"`},
		{name: "unknown group", method: "GET", path: "/v1/groups/users/keys/k", wantCode: 404, wantErr: `unknown group "users"`},
		{name: "key too long", method: "GET", path: "/v1/groups/items/keys/" + long, wantCode: 400, wantErr: "key must be 1 to 1024 bytes"},
		{name: "key not in source", method: "GET", path: "/v1/groups/items/keys/missing", wantCode: 404, wantErr: "not found"},
		{name: "bad JSON", method: "PUT", path: "/v1/groups/items/keys/k", body: `{"value":`, wantCode: 400, wantErr: "not a JSON object"},
		{name: "value not a string", method: "PUT", path: "/v1/groups/items/keys/k", body: `{"value":7}`, wantCode: 400, wantErr: "not a JSON object"},
		{name: "unknown field", method: "PUT", path: "/v1/groups/items/keys/k", body: `{"valeu":"x"}`, wantCode: 400, wantErr: "unknown field"},
		{name: "no value", method: "PUT", path: "/v1/groups/items/keys/k", body: `{}`, wantCode: 400, wantErr: `lacks "value"`},
		{name: "empty body", method: "PUT", path: "/v1/groups/items/keys/k", wantCode: 400, wantErr: "not a JSON object"},
		{name: "two values", method: "PUT", path: "/v1/groups/items/keys/k", body: `{"value":"a"}{"value":"b"}`, wantCode: 400, wantErr: "more than one"},
		{name: "body too big", method: "PUT", path: "/v1/groups/items/keys/k", body: `{"value":"` + strings.Repeat("x", maxBody) + `"}`, wantCode: 413, wantErr: "larger than"},
		{name: "PUT key too long", method: "PUT", path: "/v1/groups/items/keys/" + long, body: `{"value":"x"}`, wantCode: 400, wantErr: "key must be"},
		{name: "read-only group", method: "PUT", path: "/v1/groups/ro/keys/k", body: `{"value":"x"}`, wantCode: 405, wantErr: "read-only"},
		{name: "no version", method: "POST", path: "/v1/groups/items/keys/k/invalidate", wantCode: 400, wantErr: "version is required"},
		{name: "version not a number", method: "POST", path: "/v1/groups/items/keys/k/invalidate?version=abc", wantCode: 400, wantErr: `version "abc"`},
		{name: "version zero", method: "POST", path: "/v1/groups/items/keys/k/invalidate?version=0", wantCode: 400, wantErr: `version "0"`},
		{name: "version above 2^63-1", method: "POST", path: "/v1/groups/items/keys/k/invalidate?version=18446744073709551615", wantCode: 400, wantErr: `version "18446744073709551615"`},
		{name: "version negative", method: "POST", path: "/v1/groups/items/keys/k/invalidate?version=-3", wantCode: 400, wantErr: `version "-3"`},
		{name: "bad ack", method: "POST", path: "/v1/groups/items/keys/k/invalidate?version=1&ack=some", wantCode: 400, wantErr: `ack "some"`},
		{name: "invalidate unknown group", method: "POST", path: "/v1/groups/users/keys/k/invalidate?version=1", wantCode: 404, wantErr: "unknown group"},
		{name: "DELETE key", method: "DELETE", path: "/v1/groups/items/keys/k", wantCode: 405, wantErr: "DELETE not allowed", wantAllow: "GET, PUT"},
		{name: "GET invalidate", method: "GET", path: "/v1/groups/items/keys/k/invalidate?version=1", wantCode: 405, wantErr: "GET not allowed", wantAllow: "POST"},
		{name: "no endpoint", method: "GET", path: "/v2/anything", wantCode: 404, wantErr: "no endpoint"},
		{name: "empty key", method: "GET", path: "/v1/groups/items/keys/", wantCode: 404, wantErr: "no endpoint"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body, resp := do(t, f.ts.URL, tt.method, tt.path, tt.body)
			if code != tt.wantCode {
				t.Errorf("%s %s = %d %s, want %d", tt.method, tt.path, code, body, tt.wantCode)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q, want application/json", ct)
			}
			if e := decode[errorResponse](t, body); !strings.Contains(e.Error, tt.wantErr) {
				t.Errorf("error %q lacks %q", e.Error, tt.wantErr)
			}
			if got := resp.Header.Get("Allow"); got != tt.wantAllow {
				t.Errorf("Allow = %q, want %q", got, tt.wantAllow)
			}
		})
	}
	// None of the bad writes reached the source.
	if ver, err := f.src.LoadVersion(context.Background(), "k"); err != nil || ver != 1 {
		t.Errorf("version of k = %d, %v after bad requests, want 1", ver, err)
	}
}

// fakeCache is a Cache whose answers the test chooses.
type fakeCache struct {
	getErr, invErr error
	invalidated    []uint64
}

func (c *fakeCache) Name() string { return "fake" }

func (c *fakeCache) Get(context.Context, string, ...node.ReadOption) (Item, error) {
	return Item{Body: "b", Version: 1}, c.getErr
}

func (c *fakeCache) Invalidate(_ context.Context, _ string, v uint64, _ ...node.WriteOption) error {
	c.invalidated = append(c.invalidated, v)
	return c.invErr
}

type fakeWriter struct{ err error }

func (w fakeWriter) Write(context.Context, string, string) (uint64, error) { return 7, w.err }

// TestWriteOutcomes covers what a single node cannot produce: unacknowledged
// and failed invalidations, and every read error class.
func TestWriteOutcomes(t *testing.T) {
	tests := []struct {
		name             string
		cache            *fakeCache
		writer           fakeWriter
		method, path     string
		wantCode         int
		wantNotAck       []string
		wantInvErr, want string // substrings of invalidation_error / error
		wantInvalidated  int
	}{
		{name: "PUT not acknowledged is 200", cache: &fakeCache{invErr: &node.AckError{Missing: []string{"n2", "n3"}, Err: context.DeadlineExceeded}},
			method: "PUT", path: "/v1/groups/fake/keys/k", wantCode: 200, wantNotAck: []string{"n2", "n3"}, wantInvalidated: 1},
		{name: "PUT invalidation failed is 200", cache: &fakeCache{invErr: node.ErrClosed},
			method: "PUT", path: "/v1/groups/fake/keys/k", wantCode: 200, wantInvErr: "closed", wantInvalidated: 1},
		{name: "PUT source fails", cache: &fakeCache{}, writer: fakeWriter{err: errors.New("disk full")},
			method: "PUT", path: "/v1/groups/fake/keys/k", wantCode: 502, want: "disk full", wantInvalidated: 0},
		{name: "invalidate ack all not acknowledged", cache: &fakeCache{invErr: &node.AckError{Missing: []string{"n3"}, Err: context.DeadlineExceeded}},
			method: "POST", path: "/v1/groups/fake/keys/k/invalidate?version=3&ack=all", wantCode: 200, wantNotAck: []string{"n3"}, wantInvalidated: 1},
		{name: "invalidate on closed node", cache: &fakeCache{invErr: node.ErrClosed},
			method: "POST", path: "/v1/groups/fake/keys/k/invalidate?version=3", wantCode: 503, want: "closed", wantInvalidated: 1},
		{name: "degraded", cache: &fakeCache{getErr: node.ErrDegraded}, method: "GET", path: "/v1/groups/fake/keys/k", wantCode: 503, want: "degraded"},
		{name: "overloaded", cache: &fakeCache{getErr: fmt.Errorf("%w: x", node.ErrOverloaded)}, method: "GET", path: "/v1/groups/fake/keys/k", wantCode: 503, want: "overloaded"},
		{name: "stale", cache: &fakeCache{getErr: &node.StaleError{Group: "fake", Key: "k", Version: 1, Floor: 2}}, method: "GET", path: "/v1/groups/fake/keys/k", wantCode: 503, want: "below floor"},
		{name: "source error", cache: &fakeCache{getErr: &node.LoadError{Group: "fake", Key: "k", Err: errors.New("connection refused")}}, method: "GET", path: "/v1/groups/fake/keys/k", wantCode: 502, want: "connection refused"},
		{name: "source timeout", cache: &fakeCache{getErr: &node.LoadError{Group: "fake", Key: "k", Err: context.DeadlineExceeded}}, method: "GET", path: "/v1/groups/fake/keys/k", wantCode: 504, want: "deadline"},
		{name: "not found", cache: &fakeCache{getErr: &node.LoadError{Group: "fake", Key: "k", Err: loader.ErrNotFound}}, method: "GET", path: "/v1/groups/fake/keys/k", wantCode: 404, want: "not found"},
		{name: "unclassified", cache: &fakeCache{getErr: errors.New("boom")}, method: "GET", path: "/v1/groups/fake/keys/k", wantCode: 500, want: "boom"},
	}
	f := newFixture(t, nil) // for a running node
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := New(Config{Node: f.n, Groups: []Group{{Cache: tt.cache, Source: tt.writer}}})
			if err != nil {
				t.Fatal(err)
			}
			var body string
			if tt.method == "PUT" {
				body = `{"value":"x"}`
			}
			req, _ := http.NewRequest(tt.method, tt.path, strings.NewReader(body))
			rec := httptest.NewRecorder()
			s.ServeHTTP(rec, req)
			if rec.Code != tt.wantCode {
				t.Fatalf("%s %s = %d %s, want %d", tt.method, tt.path, rec.Code, rec.Body, tt.wantCode)
			}
			if len(tt.cache.invalidated) != tt.wantInvalidated {
				t.Errorf("invalidations = %v, want %d", tt.cache.invalidated, tt.wantInvalidated)
			}
			if tt.wantCode != 200 {
				if e := decode[errorResponse](t, rec.Body.Bytes()); !strings.Contains(e.Error, tt.want) {
					t.Errorf("error %q lacks %q", e.Error, tt.want)
				}
				return
			}
			got := decode[writeResponse](t, rec.Body.Bytes())
			if !slices.Equal(got.NotAcknowledged, tt.wantNotAck) || !strings.Contains(got.InvalidationError, tt.wantInvErr) ||
				(tt.wantInvErr == "" && got.InvalidationError != "") {
				t.Errorf("got %+v, want not_acknowledged %v, invalidation_error ~%q", got, tt.wantNotAck, tt.wantInvErr)
			}
			if tt.method == "PUT" && (got.Version != 7 || tt.cache.invalidated[0] != 7) {
				t.Errorf("PUT answered version %d and invalidated %v, want the source's 7", got.Version, tt.cache.invalidated)
			}
		})
	}
}

func TestNewValidates(t *testing.T) {
	f := newFixture(t, nil)
	c := &fakeCache{}
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{name: "no node", cfg: Config{Groups: []Group{{Cache: c}}}, want: "Node is required"},
		{name: "no groups", cfg: Config{Node: f.n}, want: "at least one Group"},
		{name: "nil cache", cfg: Config{Node: f.n, Groups: []Group{{}}}, want: "Groups[0].Cache is required"},
		{name: "duplicate", cfg: Config{Node: f.n, Groups: []Group{{Cache: c}, {Cache: c}}}, want: `group "fake" given twice`},
		{name: "negative ack timeout", cfg: Config{Node: f.n, Groups: []Group{{Cache: c}}, AckTimeout: -1}, want: "AckTimeout must not be negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := New(tt.cfg); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("New = %v, want an error with %q", err, tt.want)
			}
		})
	}
}

func FuzzDecodeValue(f *testing.F) {
	for _, s := range []string{`{"value":"x"}`, `{"value":""}`, `{}`, `{"value":7}`, `{"value":"a"} {}`, `null`, `{"value":"\u00e9\n"}`, ``} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := decodeValue(b) // must never panic
		if err != nil {
			return
		}
		enc, _ := json.Marshal(map[string]string{"value": v})
		if got, err := decodeValue(enc); err != nil || got != v {
			t.Fatalf("round trip of %q: %q, %v", v, got, err)
		}
	})
}

// BenchmarkGetHit measures the API's overhead on a cache hit: routing, the
// group's Get and JSON encoding, without a network.
func BenchmarkGetHit(b *testing.B) {
	ctx := context.Background()
	src, err := OpenSource(ctx, "sqlite://"+b.TempDir()+"/db", "items")
	if err != nil {
		b.Fatal(err)
	}
	defer src.Close()
	n, err := node.Start(ctx, node.Config{Name: "bench", Standalone: true})
	if err != nil {
		b.Fatal(err)
	}
	defer n.Close(context.Background())
	items, err := node.NewGroup(n, "items", node.GroupConfig[Item]{Loader: src, Cost: itemCost})
	if err != nil {
		b.Fatal(err)
	}
	s, err := New(Config{Node: n, Groups: []Group{{Cache: items, Source: src}}})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := src.Write(ctx, "k", "value"); err != nil {
		b.Fatal(err)
	}
	req := httptest.NewRequest("GET", "/v1/groups/items/keys/k", nil)
	for range 100 { // warm: the store applies sets asynchronously
		s.ServeHTTP(httptest.NewRecorder(), req)
	}
	b.ReportAllocs()
	for b.Loop() {
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, req)
		if rec.Code != 200 {
			b.Fatalf("GET = %d", rec.Code)
		}
	}
}
