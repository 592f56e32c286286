package groupcachepeer

import (
	"bytes"
	"errors"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func wantValue(size int) []byte {
	v := make([]byte, size)
	for i := range v {
		v[i] = byte('a' + i%26)
	}
	return v
}

func stats(t *testing.T, c *Cluster, client *http.Client, url string) Stats {
	t.Helper()
	s, err := c.Stats(t.Context(), client, url)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestFetch: a key fetched from its owner is loaded once by the owner's
// getter and then served from its memory; a key fetched from a non-owner is
// loaded by the owner (the children agree with Cluster.Owner on ownership).
func TestFetch(t *testing.T) {
	const size = 1000
	c := StartTB(t, Config{Binary: buildTB(t), Peers: 2, ValueSize: size})
	tr := newTransport(t)
	client := &http.Client{Transport: tr}
	f := NewFetcher(tr)
	a, b := c.URLs()[0], c.URLs()[1]

	tests := []struct {
		name      string
		owner     string
		via       string
		fetches   int
		wantCalls map[string]int64 // getter calls per peer after the fetches
	}{
		{"from owner", a, a, 10, map[string]int64{a: 1, b: 0}},
		{"via non-owner", b, a, 3, map[string]int64{a: 1, b: 1}}, // a's 1 is the previous case
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key, err := c.KeyOwnedBy(tt.owner)
			if err != nil {
				t.Fatal(err)
			}
			for range tt.fetches {
				v, err := f.Value(t.Context(), tt.via, key)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(v, wantValue(size)) {
					t.Fatalf("value of %d bytes %.20q..., want %d bytes", len(v), v, size)
				}
			}
			for url, want := range tt.wantCalls {
				if got := stats(t, c, client, url).GetterCalls; got != want {
					t.Errorf("peer %s: getter calls = %d, want %d", url, got, want)
				}
			}
		})
	}
	if s := stats(t, c, client, a); s.ServerRequests != 13 || s.MainItems != 1 {
		t.Errorf("owner a: server requests %d (want 13), main cache items %d (want 1)", s.ServerRequests, s.MainItems)
	}
}

func TestFetchErrors(t *testing.T) {
	c := StartTB(t, Config{Binary: buildTB(t), Peers: 1})
	f := NewFetcher(newTransport(t))
	if _, err := f.Value(t.Context(), c.URLs()[0]+"/nope", "k"); err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("fetch of an unknown group: err = %v, want a 404", err)
	}
}

// TestOwnershipAgrees: the children's HTTPPools and Cluster.Owner agree on
// the owner of every key: fetched through any peer, each key is loaded by
// the getter of the peer Owner names, and only there.
func TestOwnershipAgrees(t *testing.T) {
	c := StartTB(t, Config{Binary: buildTB(t), Peers: 3})
	tr := newTransport(t)
	client := &http.Client{Transport: tr}
	f := NewFetcher(tr)
	urls := c.URLs()
	want := map[string]int64{}
	for i := range 60 {
		key := "agree-" + strconv.Itoa(i)
		want[c.Owner(key)]++
		if _, err := f.Value(t.Context(), urls[i%len(urls)], key); err != nil {
			t.Fatal(err)
		}
	}
	for _, u := range urls {
		if got := stats(t, c, client, u).GetterCalls; got != want[u] {
			t.Errorf("peer %s: getter calls = %d, want %d (the keys Owner gives it)", u, got, want[u])
		}
	}
}

// gone reports whether pid no longer exists (Stop has reaped it).
func gone(pid int) bool {
	return errors.Is(syscall.Kill(pid, 0), syscall.ESRCH)
}

func TestStop(t *testing.T) {
	bin := buildTB(t)
	tests := []struct {
		name       string
		cfg        Config
		wantKilled bool
	}{
		{"SIGTERM", Config{Binary: bin, Peers: 3}, false},
		{"SIGKILL after timeout", Config{Binary: bin, Peers: 2, IgnoreTerm: true, StopTimeout: 300 * time.Millisecond}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Start(t.Context(), tt.cfg)
			if err != nil {
				t.Fatal(err)
			}
			pids := c.Pids()
			err = c.Stop()
			if killed := err != nil && strings.Contains(err.Error(), "killed after"); killed != tt.wantKilled || (err != nil && !killed) {
				t.Errorf("Stop = %v, want killed=%v", err, tt.wantKilled)
			}
			for _, pid := range pids {
				if !gone(pid) {
					t.Errorf("pid %d still exists after Stop", pid)
				}
			}
			if err := c.Stop(); err != nil {
				t.Errorf("second Stop = %v, want nil", err)
			}
		})
	}
}

// TestExitOnStdinEOF: a peer whose parent goes away (its stdin closes) exits
// by itself, cleanly.
func TestExitOnStdinEOF(t *testing.T) {
	c := StartTB(t, Config{Binary: buildTB(t), Peers: 1})
	p := c.procs[0]
	if err := p.stdin.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.done:
		if p.err != nil {
			t.Errorf("peer exited with %v, want a clean exit", p.err)
		}
	case <-time.After(10 * time.Second): // a bound on a real child process, not synchronisation
		t.Fatal("peer still running 10s after stdin EOF")
	}
}

// TestStartFailure: a child that exits before "ready" fails Start, which
// leaves no process behind.
func TestStartFailure(t *testing.T) {
	bin, err := exec.LookPath("false")
	if err != nil {
		t.Skip("no false(1)")
	}
	c, err := Start(t.Context(), Config{Binary: bin, Peers: 2})
	if err == nil {
		_ = c.Stop()
		t.Fatal("Start succeeded with a binary that never prints ready")
	}
	if !strings.Contains(err.Error(), "exited before ready") {
		t.Errorf("Start error = %v, want one naming the early exit", err)
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"no binary", Config{}, "Binary is required"},
		{"negative peers", Config{Binary: "x", Peers: -1}, "Peers must not be negative"},
		{"negative value size", Config{Binary: "x", ValueSize: -1}, "ValueSize must not be negative"},
		{"negative stop timeout", Config{Binary: "x", StopTimeout: -1}, "StopTimeout must not be negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Start(t.Context(), tt.cfg)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Start = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestReadyWriter(t *testing.T) {
	tests := []struct {
		name   string
		chunks []string
		ready  bool
	}{
		{"one write", []string{"ready\n"}, true},
		{"split", []string{"re", "ady", "\n"}, true},
		{"after other lines", []string{"starting\nready\n"}, true},
		{"no newline yet", []string{"ready"}, false},
		{"other text", []string{"not ready\n", "ready now\n"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := &readyWriter{ready: make(chan struct{})}
			for _, c := range tt.chunks {
				if n, err := w.Write([]byte(c)); n != len(c) || err != nil {
					t.Fatalf("Write = %d, %v", n, err)
				}
			}
			select {
			case <-w.ready:
				if !tt.ready {
					t.Error("ready closed, want open")
				}
			default:
				if tt.ready {
					t.Error("ready open, want closed")
				}
			}
		})
	}
}
