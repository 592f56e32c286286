package main

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// lockedBuffer collects a process's stderr for failure messages.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// proc is one `nearcache node` process.
type proc struct {
	name   string
	http   string // base URL
	cmd    *exec.Cmd
	stderr *lockedBuffer
	exited chan struct{} // closed when Wait returned
	err    error         // Wait's result, set before exited closes
}

func (p *proc) running() bool {
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// stop kills p by pid if it still runs and waits for it.
func (p *proc) stop() {
	if p.running() {
		_ = p.cmd.Process.Kill()
	}
	<-p.exited
}

// freePort returns a port free on 127.0.0.1 for both TCP and UDP (gossip
// needs both). Another process may still take it before the node binds it:
// startCluster retries.
func freePort(t *testing.T) int {
	t.Helper()
	for range 20 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := ln.Addr().(*net.TCPAddr).Port
		pc, err := net.ListenPacket("udp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		ln.Close()
		if err == nil {
			pc.Close()
			return port
		}
	}
	t.Fatal("no port free for both TCP and UDP")
	return 0
}

// startCluster starts n nodes named n1..nN on 127.0.0.1 over one SQLite file
// and waits until every /readyz answers 200. Each node joins the others; the
// last one is configured through NEARCACHE_* variables instead of flags.
func startCluster(t *testing.T, bin string, n int) []*proc {
	t.Helper()
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "gossip.key")
	if err := os.WriteFile(keyFile, []byte(hex.EncodeToString(bytes.Repeat([]byte{7}, 32))+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	source := "sqlite://" + filepath.Join(dir, "source.db")
	for attempt := 1; ; attempt++ {
		gossipPorts := make([]int, n)
		httpPorts := make([]int, n)
		for i := range n {
			gossipPorts[i], httpPorts[i] = freePort(t), freePort(t)
		}
		procs := make([]*proc, n)
		for i := range n {
			var join []string
			for j, gp := range gossipPorts {
				if j != i {
					join = append(join, fmt.Sprintf("127.0.0.1:%d", gp))
				}
			}
			settings := [][2]string{
				{"name", fmt.Sprintf("n%d", i+1)},
				{"bind-addr", "127.0.0.1"},
				{"gossip-port", strconv.Itoa(gossipPorts[i])},
				{"http-addr", fmt.Sprintf("127.0.0.1:%d", httpPorts[i])},
				{"join", strings.Join(join, ",")},
				{"secret-key-file", keyFile},
				{"source", source},
				{"profile", "local"},
				{"max-staleness", "2s"},
				{"ack-timeout", "1s"},
				{"shutdown-timeout", "3s"},
			}
			args := []string{"node"}
			env := append(os.Environ(), "NEARCACHE_LOG_LEVEL=info")
			for _, kv := range settings {
				if i == n-1 {
					env = append(env, envName(kv[0])+"="+kv[1])
				} else {
					args = append(args, "--"+kv[0], kv[1])
				}
			}
			p := &proc{
				name:   settings[0][1],
				http:   fmt.Sprintf("http://127.0.0.1:%d", httpPorts[i]),
				cmd:    exec.Command(bin, args...),
				stderr: &lockedBuffer{},
				exited: make(chan struct{}),
			}
			p.cmd.Env = env
			p.cmd.Stdout, p.cmd.Stderr = p.stderr, p.stderr
			if err := p.cmd.Start(); err != nil {
				t.Fatal(err)
			}
			go func() { p.err = p.cmd.Wait(); close(p.exited) }()
			procs[i] = p
		}
		stopAll := func() {
			for _, p := range procs {
				p.stop()
			}
		}
		err := waitReady(procs, 30*time.Second)
		if err == nil {
			t.Cleanup(func() {
				stopAll()
				httpClient.CloseIdleConnections()
			})
			return procs
		}
		stopAll()
		if attempt == 3 || !strings.Contains(err.Error(), "address already in use") {
			t.Fatalf("cluster not ready (attempt %d): %v", attempt, err)
		}
		t.Logf("port collision, retrying: %v", err)
	}
}

// waitReady polls every /readyz until all answer 200 with every member
// alive, a process exits, or the timeout passes.
func waitReady(procs []*proc, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	ready := make([]bool, len(procs))
	for {
		all := true
		for i, p := range procs {
			if !p.running() {
				return fmt.Errorf("%s exited: %v\n%s", p.name, p.err, p.stderr.String())
			}
			if !ready[i] {
				// Ready, and sees every member: a write then waits for all.
				code, body := httpDo(http.MethodGet, p.http+"/readyz", "")
				var r struct{ Members int }
				ready[i] = code == http.StatusOK && json.Unmarshal([]byte(body), &r) == nil && r.Members == len(procs)
				all = all && ready[i]
			}
		}
		if all {
			return nil
		}
		if time.Now().After(deadline) {
			var b strings.Builder
			for i, p := range procs {
				_, body := httpDo(http.MethodGet, p.http+"/readyz", "")
				fmt.Fprintf(&b, "%s ready=%v %s\n%s\n", p.name, ready[i], body, p.stderr.String())
			}
			return fmt.Errorf("not ready within %v:\n%s", timeout, b.String())
		}
		time.Sleep(50 * time.Millisecond) // polling other processes: nothing to synchronise on
	}
}

var httpClient = &http.Client{Timeout: 10 * time.Second}

// httpDo sends one request; code is 0 when the request failed.
func httpDo(method, url, body string) (code int, respBody string) {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		return 0, err.Error()
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

type keyAnswer struct {
	Key             string   `json:"key"`
	Value           string   `json:"value"`
	Version         uint64   `json:"version"`
	NotAcknowledged []string `json:"not_acknowledged"`
	Error           string   `json:"error"`
}

// call sends a request, expects wantCode and decodes the JSON answer.
func call(t *testing.T, method, url, body string, wantCode int) keyAnswer {
	t.Helper()
	code, resp := httpDo(method, url, body)
	if code != wantCode {
		t.Fatalf("%s %s = %d %s, want %d", method, url, code, resp, wantCode)
	}
	var a keyAnswer
	if err := json.Unmarshal([]byte(resp), &a); err != nil {
		t.Fatalf("%s %s: body %q is not JSON: %v", method, url, resp, err)
	}
	return a
}

// TestNodeCluster runs three `nearcache node` processes on loopback over one
// SQLite file: writes through one node are read at their new version from
// every node, bad requests get JSON 4xx, the metrics cover the dashboard, the
// status page renders in a real browser, the cluster survives a SIGKILL, and
// SIGTERM exits 0.
func TestNodeCluster(t *testing.T) {
	bin := binary(t)
	procs := startCluster(t, bin, 3)
	n1, n2, n3 := procs[0], procs[1], procs[2]
	key := func(p *proc) string { return p.http + "/v1/groups/items/keys/order-17" }
	dump := func() {
		for _, p := range procs {
			t.Logf("--- %s:\n%s", p.name, p.stderr.String())
		}
	}

	t.Run("write through one node, read the new version everywhere", func(t *testing.T) {
		if a := call(t, "PUT", key(n1), `{"value":"new"}`, 200); a.Version != 1 || len(a.NotAcknowledged) != 0 {
			t.Fatalf("first PUT = %+v, want version 1, acknowledged by all", a)
		}
		for _, p := range procs { // each node loads and caches version 1, then hits
			for range 2 {
				if a := call(t, "GET", key(p), "", 200); a.Value != "new" || a.Version != 1 {
					t.Fatalf("GET from %s = %+v, want new@1", p.name, a)
				}
			}
		}
		// Every node holds version 1 now; the write must reach them all.
		if a := call(t, "PUT", key(n1), `{"value":"paid"}`, 200); a.Version != 2 || len(a.NotAcknowledged) != 0 {
			t.Fatalf("second PUT = %+v, want version 2, acknowledged by all", a)
		}
		for _, p := range procs {
			if a := call(t, "GET", key(p), "", 200); a.Value != "paid" || a.Version != 2 {
				dump()
				t.Fatalf("GET from %s after the write = %+v, want paid@2", p.name, a)
			}
		}
		if a := call(t, "GET", key(n3)+"?mode=verified", "", 200); a.Version != 2 {
			t.Errorf("verified GET from n3 = %+v, want version 2", a)
		}
	})

	t.Run("bad requests get 4xx JSON", func(t *testing.T) {
		for _, tt := range []struct {
			method, url, body string
			want              int
		}{
			{"GET", key(n2) + "?mode=eventually", "", 400},
			{"GET", n2.http + "/v1/groups/users/keys/1", "", 404},
			{"GET", n2.http + "/v1/groups/items/keys/" + strings.Repeat("k", 1025), "", 400},
			{"PUT", key(n2), `{"value": 1}`, 400},
			{"PUT", key(n2), `not json`, 400},
			{"POST", key(n2) + "/invalidate?version=zero", "", 400},
			{"DELETE", key(n2), "", 405},
		} {
			if a := call(t, tt.method, tt.url, tt.body, tt.want); a.Error == "" {
				t.Errorf("%s %s: no error message in %+v", tt.method, tt.url, a)
			}
		}
	})

	t.Run("metrics cover the dashboard", func(t *testing.T) {
		// Prometheus sees the union of the nodes' scrapes, and so does the
		// test: a histogram has series only on the nodes that observed into
		// it (the key's owner loaded it; the others applied a remote
		// invalidation).
		scraped := map[string]bool{}
		for _, p := range procs {
			code, body := httpDo("GET", p.http+"/metrics", "")
			if code != 200 {
				t.Fatalf("%s /metrics = %d", p.name, code)
			}
			maps.Copy(scraped, scrapedNames(body))
		}
		if missing := missingMetrics(dashboardMetrics(t), scraped); len(missing) > 0 {
			t.Errorf("the dashboard queries metrics no node exports: %v", missing)
		}
	})

	t.Run("status page in a browser", func(t *testing.T) {
		dom := dumpDOM(t, n1.http+"/debug/cluster")
		checkStatusDOM(t, dom, []string{"n1", "n2", "n3"})
	})

	t.Run("SIGKILL one node, the others keep serving", func(t *testing.T) {
		if err := n3.cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		<-n3.exited
		for _, p := range []*proc{n1, n2} {
			if a := call(t, "GET", key(p), "", 200); a.Version != 2 {
				t.Errorf("GET from %s after the kill = %+v, want version 2", p.name, a)
			}
		}
		// n3 may still count as a live member: the write must not wait for
		// it beyond the ack timeout (1s), and it reports who did not ack.
		start := time.Now()
		a := call(t, "PUT", key(n1), `{"value":"refunded"}`, 200)
		if took := time.Since(start); took > 5*time.Second {
			t.Errorf("PUT with a dead member took %v", took)
		}
		if a.Version != 3 || len(a.NotAcknowledged) > 1 || len(a.NotAcknowledged) == 1 && a.NotAcknowledged[0] != "n3" {
			t.Errorf("PUT after the kill = %+v, want version 3, not acknowledged by n3 at most", a)
		}
		if a := call(t, "GET", key(n2), "", 200); a.Value != "refunded" || a.Version != 3 {
			dump()
			t.Errorf("GET from n2 after the write = %+v, want refunded@3", a)
		}
	})

	t.Run("SIGTERM drains, leaves and exits 0", func(t *testing.T) {
		if err := n2.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		select {
		case <-n2.exited:
		case <-time.After(15 * time.Second):
			t.Fatalf("n2 still running 15s after SIGTERM\n%s", n2.stderr.String())
		}
		if n2.err != nil {
			t.Errorf("n2 after SIGTERM: %v, want exit 0\n%s", n2.err, n2.stderr.String())
		}
		if !strings.Contains(n2.stderr.String(), "msg=stopped") {
			t.Errorf("n2 did not log its clean stop:\n%s", n2.stderr.String())
		}
		if a := call(t, "GET", key(n1), "", 200); a.Version != 3 {
			t.Errorf("GET from n1, last node standing = %+v, want version 3", a)
		}
	})
}
