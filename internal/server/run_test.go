package server

import (
	"context"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nearcache/nearcache/node"
)

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// TestRunServesAndStops runs a standalone node in-process: it serves, and
// cancelling ctx stops everything (goleak checks no goroutine is left).
func TestRunServesAndStops(t *testing.T) {
	addr := freeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, RunConfig{
			Node:     node.Config{Name: "run", Standalone: true},
			HTTPAddr: addr,
			Source:   "sqlite://" + filepath.Join(t.TempDir(), "db"),
		})
	}()
	base := "http://" + addr
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get(base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		select {
		case err := <-done:
			t.Fatalf("Run returned early: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("not ready within 10s")
		}
		time.Sleep(20 * time.Millisecond) // polling a real server, not synchronising goroutines
	}
	if code, b, _ := do(t, base, "PUT", "/v1/groups/items/keys/k", `{"value":"x"}`); code != 200 {
		t.Fatalf("PUT = %d %s", code, b)
	}
	if code, b, _ := do(t, base, "GET", "/v1/groups/items/keys/k", ""); code != 200 || !strings.Contains(string(b), `"version":1`) {
		t.Fatalf("GET = %d %s", code, b)
	}
	code, b, _ := do(t, base, "GET", "/metrics", "")
	for _, want := range []string{"go_goroutines", "nearcache_members 1", `nearcache_gets_total{group="items",result="miss"} 1`} {
		if code != 200 || !strings.Contains(string(b), want) {
			t.Errorf("/metrics = %d, lacks %q", code, want)
		}
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run after cancel = %v, want nil", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("Run did not return within 15s of cancel")
	}
	if _, err := http.Get(base + "/healthz"); err == nil {
		t.Error("still serving after Run returned")
	}
	http.DefaultClient.CloseIdleConnections()
}

func TestRunRejects(t *testing.T) {
	tmp := t.TempDir()
	busy := freeAddr(t)
	ln, err := net.Listen("tcp", busy)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	tests := []struct {
		name string
		cfg  RunConfig
		want string
	}{
		{name: "no source", cfg: RunConfig{Node: node.Config{Name: "x", Standalone: true}}, want: "Source is required"},
		{name: "negative ttl", cfg: RunConfig{Source: "sqlite:///x", TTL: -1}, want: "must not be negative"},
		{name: "bad table", cfg: RunConfig{Node: node.Config{Standalone: true}, Source: "sqlite://" + filepath.Join(tmp, "a"), Table: "a b"}, want: "plain SQL identifier"},
		{name: "bad node config", cfg: RunConfig{Node: node.Config{BindAddr: "127.0.0.1"}, Source: "sqlite://" + filepath.Join(tmp, "b")}, want: "Name is required"},
		{name: "HTTP address taken", cfg: RunConfig{Node: node.Config{Name: "x", Standalone: true}, Source: "sqlite://" + filepath.Join(tmp, "c"), HTTPAddr: busy}, want: "listen"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Run(context.Background(), tt.cfg)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Run = %v, want an error with %q", err, tt.want)
			}
		})
	}
}
