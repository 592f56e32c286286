package server

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nearcache/nearcache/metrics"
	"github.com/nearcache/nearcache/node"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fixture is a standalone node with the "items" group over a fresh SQLite
// file, a read-only "ro" group, and the server in front of them.
type fixture struct {
	ts  *httptest.Server
	n   *node.Node
	src *Source
	obs *Observer
	reg *prometheus.Registry
}

func newFixture(t *testing.T, mutate func(*Config)) *fixture {
	t.Helper()
	ctx := context.Background()
	src, err := OpenSource(ctx, "sqlite://"+filepath.Join(t.TempDir(), "src.db"), "items")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() })
	reg := prometheus.NewRegistry()
	obs := NewObserver(metrics.New(reg))
	n, err := node.Start(ctx, node.Config{Name: "solo", Standalone: true, Observer: obs})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close(context.Background()) })
	items, err := node.NewGroup(n, "items", node.GroupConfig[Item]{Loader: src, Cost: itemCost})
	if err != nil {
		t.Fatal(err)
	}
	ro, err := node.NewGroup(n, "ro", node.GroupConfig[Item]{Loader: src})
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{
		Node:     n,
		Groups:   []Group{{Cache: items, Source: src}, {Cache: ro}},
		Gatherer: reg,
		Observer: obs,
	}
	if mutate != nil {
		mutate(&cfg)
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s)
	t.Cleanup(ts.Close)
	return &fixture{ts: ts, n: n, src: src, obs: obs, reg: reg}
}

// do sends a request and returns the status, the body and the response.
func do(t *testing.T, base, method, path, body string) (int, []byte, *http.Response) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, base+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b, resp
}

// decode unmarshals b into a new T or fails the test.
func decode[T any](t *testing.T, b []byte) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("body %q is not the expected JSON: %v", b, err)
	}
	return v
}
