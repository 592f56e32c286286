package server

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"log"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nearcache/nearcache/node"
)

// testToken is an API token of the tests.
const testToken = "test-token-0123456789abcdef"

// running is one Run in-process, serving on 127.0.0.1.
type running struct {
	base   string // http://127.0.0.1:port (https:// with TLS)
	client *http.Client
	stop   func()
}

// startRun runs a standalone node with mutate applied to its RunConfig and
// waits until /readyz answers 200. The test's cleanup stops it.
func startRun(t *testing.T, mutate func(*RunConfig)) *running {
	t.Helper()
	addr := freeAddr(t)
	cfg := RunConfig{
		Node:     node.Config{Name: "run", Standalone: true},
		HTTPAddr: addr,
		Source:   "sqlite://" + filepath.Join(t.TempDir(), "db"),
	}
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{}}
	scheme := "http"
	if mutate != nil {
		mutate(&cfg)
	}
	if cfg.TLSCert != "" {
		scheme = "https"
		pool := x509.NewCertPool()
		pem, err := os.ReadFile(cfg.TLSCert)
		if err != nil {
			t.Fatal(err)
		}
		pool.AppendCertsFromPEM(pem)
		client.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, cfg) }()
	r := &running{base: scheme + "://" + addr, client: client}
	stopped := false
	r.stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run = %v", err)
			}
		case <-time.After(20 * time.Second):
			t.Error("Run did not return within 20s of cancel")
		}
		client.CloseIdleConnections()
	}
	t.Cleanup(r.stop)
	deadline := time.Now().Add(10 * time.Second)
	for {
		if code, _, _ := r.do(t, "GET", "/readyz", "", ""); code == 200 {
			return r
		}
		select {
		case err := <-done:
			stopped = true
			t.Fatalf("Run returned early: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("not ready within 10s")
		}
		time.Sleep(20 * time.Millisecond) // polling a real server, not synchronising goroutines
	}
}

// do sends a request with the given Authorization header ("" = none) and
// returns the status (0 when the request failed), body and header.
func (r *running) do(t *testing.T, method, path, body, auth string) (int, string, http.Header) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, r.base+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := r.client.Do(req)
	if err != nil {
		return 0, err.Error(), nil
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

// metric returns the value of one series in r's /metrics, -1 if absent.
func (r *running) metric(t *testing.T, series string) float64 {
	t.Helper()
	code, body, _ := r.do(t, "GET", "/metrics", "", "")
	if code != 200 {
		t.Fatalf("/metrics = %d %s", code, body)
	}
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` (\S+)$`).FindStringSubmatch(body)
	if m == nil {
		return -1
	}
	v, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestRunRefusesUnprotected: a node listening beyond loopback without a key,
// or with HTTP beyond loopback without API tokens, does not start, and says
// which listener and which flag. Nothing binds: the check comes first, and
// the source cannot open (were the check gone, Run would fail on it instead
// of listening beyond loopback).
func TestRunRefusesUnprotected(t *testing.T) {
	key := make([]byte, 32)
	src := "sqlite://" + filepath.Join(t.TempDir(), "missing", "dir", "db")
	tests := []struct {
		name string
		cfg  RunConfig
		want []string
	}{
		{name: "gossip on all interfaces, no key", cfg: RunConfig{Node: node.Config{Name: "a", BindAddr: "0.0.0.0"}, HTTPAddr: "127.0.0.1:0"},
			want: []string{"gossip 0.0.0.0:0", "fill 0.0.0.0:0", "--secret-key-file", "--insecure"}},
		{name: "default bind address is all interfaces in node.Config", cfg: RunConfig{Node: node.Config{Name: "a"}, HTTPAddr: "127.0.0.1:0"},
			want: []string{"gossip 0.0.0.0:0"}},
		{name: "fill port beyond loopback, no key", cfg: RunConfig{Node: node.Config{Name: "a", BindAddr: "127.0.0.1", FillAddr: "10.1.2.3:7947"}, HTTPAddr: "127.0.0.1:0"},
			want: []string{"fill 10.1.2.3:7947", "--secret-key-file"}},
		{name: "HTTP beyond loopback, no key", cfg: RunConfig{Node: node.Config{Name: "a", Standalone: true}, HTTPAddr: ":0", Tokens: []string{testToken}},
			want: []string{"HTTP :0 listens beyond loopback without a key"}},
		{name: "HTTP beyond loopback with a key, no tokens", cfg: RunConfig{Node: node.Config{Name: "a", BindAddr: "127.0.0.1", SecretKey: key}, HTTPAddr: "0.0.0.0:0"},
			want: []string{"HTTP 0.0.0.0:0 listens beyond loopback without API tokens", "--api-token-file"}},
		{name: "a host name is not loopback", cfg: RunConfig{Node: node.Config{Name: "a", Standalone: true}, HTTPAddr: "nearcache.example:0", Tokens: []string{testToken}},
			want: []string{"HTTP nearcache.example:0"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.cfg.Source = src
			err := Run(context.Background(), tt.cfg)
			if !errors.Is(err, ErrInsecure) {
				t.Fatalf("Run = %v, want ErrInsecure", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			// With Insecure the same problems become the start's warnings.
			tt.cfg.Insecure = true
			warn, err := tt.cfg.withDefaults().security()
			if err != nil || len(warn) == 0 {
				t.Errorf("Insecure: security() = %q, %v, want warnings and no error", warn, err)
			}
		})
	}
	// Everything on loopback (the binary's defaults), or a key and tokens: no
	// complaint.
	for _, cfg := range []RunConfig{
		{Node: node.Config{Name: "a", BindAddr: "127.0.0.1"}, HTTPAddr: "127.0.0.1:8080"},
		{Node: node.Config{Name: "a", BindAddr: "::1"}, HTTPAddr: "localhost:8080"},
		{Node: node.Config{Name: "a", BindAddr: "0.0.0.0", SecretKey: key}, HTTPAddr: ":8080", Tokens: []string{testToken}},
	} {
		if warn, err := cfg.security(); err != nil || warn != nil {
			t.Errorf("security(%+v) = %q, %v, want nothing", cfg, warn, err)
		}
	}
}

// TestRunInsecureWarns: with Insecure a node exposed without a key starts
// and its first log line is a WARN naming the exposed listeners. (The node
// fails on its source right after the check, so nothing binds.)
func TestRunInsecureWarns(t *testing.T) {
	var logs lockedLog
	err := Run(context.Background(), RunConfig{
		Node:     node.Config{Name: "a", BindAddr: "0.0.0.0"},
		HTTPAddr: "0.0.0.0:0",
		Source:   "sqlite://" + filepath.Join(t.TempDir(), "missing", "dir", "db"),
		Insecure: true,
		Logger:   logs.logger(),
	})
	if err == nil || errors.Is(err, ErrInsecure) {
		t.Fatalf("Run = %v, want the source's error", err)
	}
	for _, w := range []string{"level=WARN", "gossip 0.0.0.0:0", "fill 0.0.0.0:0", "HTTP 0.0.0.0:0", "without API tokens"} {
		if !strings.Contains(logs.String(), w) {
			t.Errorf("log lacks %q:\n%s", w, logs.String())
		}
	}
}

func TestLoadTokens(t *testing.T) {
	tests := []struct {
		name, content string
		want          []string
		wantErr       string
	}{
		{name: "two with comments", content: "# rotated 2026-12\n" + testToken + "\n\n  second-token-0123456789  \n", want: []string{testToken, "second-token-0123456789"}},
		{name: "short", content: "secret\n", wantErr: "line 1: token shorter than 16"},
		{name: "space", content: "# x\nabcdefgh ijklmnopqrst\n", wantErr: "line 2: a token holds no spaces"},
		{name: "empty", content: "# nothing\n\n", wantErr: "holds no token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := LoadTokens(writeFile(t, "tokens", tt.content))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("LoadTokens = %q, %v, want error %q", got, err, tt.wantErr)
				}
				return
			}
			if err != nil || strings.Join(got, ",") != strings.Join(tt.want, ",") {
				t.Errorf("LoadTokens = %q, %v, want %q", got, err, tt.want)
			}
		})
	}
	if _, err := LoadTokens(filepath.Join(t.TempDir(), "none")); err == nil {
		t.Error("LoadTokens of a missing file: no error")
	}
}

// TestAPITokens runs a node with API tokens: writes, invalidations and
// /debug need one (401 and a WWW-Authenticate challenge without), reads and
// probes stay open; with ReadTokenRequired reads need one too.
func TestAPITokens(t *testing.T) {
	const k = "/v1/groups/items/keys/k"
	bearer := "Bearer " + testToken
	basic := "Basic " + basicCreds("any:"+testToken)
	r := startRun(t, func(c *RunConfig) { c.Tokens = []string{"other-token-0123456789", testToken} })
	steps := []struct {
		method, path, body, auth string
		want                     int
	}{
		{"PUT", k, `{"value":"x"}`, "", 401},
		{"PUT", k, `{"value":"x"}`, "Bearer wrong-token-0123456789", 401},
		{"PUT", k, `{"value":"x"}`, "Bearer " + testToken[:len(testToken)-1], 401},
		{"PUT", k, `{"value":"x"}`, "Basic " + basicCreds("any:wrong"), 401},
		{"PUT", k, `{"value":"x"}`, bearer, 200},
		{"GET", k, "", "", 200},
		{"POST", k + "/invalidate?version=1", "", "", 401},
		{"POST", k + "/invalidate?version=1", "", bearer, 200},
		{"GET", "/debug/cluster", "", "", 401},
		{"GET", "/debug/cluster.json", "", "", 401},
		{"GET", "/debug/cluster.js", "", "", 401},
		{"GET", "/debug/pprof/", "", "", 401},
		{"GET", "/debug/cluster.json", "", bearer, 200},
		{"GET", "/debug/cluster", "", basic, 200}, // a browser's login prompt
		{"GET", "/healthz", "", "", 200},
		{"GET", "/readyz", "", "", 200},
		{"GET", "/metrics", "", "", 200},
	}
	for _, st := range steps {
		code, body, h := r.do(t, st.method, st.path, st.body, st.auth)
		if code != st.want {
			t.Errorf("%s %s (auth %q) = %d %s, want %d", st.method, st.path, st.auth, code, body, st.want)
			continue
		}
		if code == 401 {
			ch := strings.Join(h.Values("WWW-Authenticate"), "; ")
			if !strings.Contains(ch, `Bearer realm="nearcache"`) || !strings.Contains(ch, `Basic realm="nearcache"`) {
				t.Errorf("%s %s: 401 with WWW-Authenticate %q, want Bearer and Basic challenges", st.method, st.path, ch)
			}
			if wrong := st.auth != ""; wrong != strings.Contains(ch, `error="invalid_token"`) {
				t.Errorf("%s %s (auth %q): challenge %q", st.method, st.path, st.auth, ch)
			}
		}
	}
	if got := r.metric(t, "nearcache_http_auth_failures_total"); got != 9 {
		t.Errorf("nearcache_http_auth_failures_total = %v, want 9", got)
	}

	ro := startRun(t, func(c *RunConfig) { c.Tokens = []string{testToken}; c.ReadTokenRequired = true })
	if code, body, _ := ro.do(t, "GET", k, "", ""); code != 401 {
		t.Errorf("ReadTokenRequired: GET without a token = %d %s, want 401", code, body)
	}
	if code, body, _ := ro.do(t, "GET", k, "", bearer); code != 404 {
		t.Errorf("ReadTokenRequired: GET with a token = %d %s, want 404 (no such row)", code, body)
	}
	if code, _, _ := ro.do(t, "GET", "/readyz", "", ""); code != 200 {
		t.Errorf("ReadTokenRequired: /readyz = %d, want 200 (probes stay open)", code)
	}
}

func basicCreds(s string) string {
	req, _ := http.NewRequest("GET", "http://x", nil)
	user, pass, _ := strings.Cut(s, ":")
	req.SetBasicAuth(user, pass)
	return strings.TrimPrefix(req.Header.Get("Authorization"), "Basic ")
}

// selfSigned writes a certificate for 127.0.0.1 and its key as PEM files.
func selfSigned(t *testing.T) (certFile, keyFile string) {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "nearcache test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA:                  true,
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &priv.PublicKey, priv)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return writeFile(t, "cert.pem", string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))),
		writeFile(t, "key.pem", string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kb})))
}

// TestRunTLS: with a certificate the API speaks only HTTPS, and the tokens
// still apply.
func TestRunTLS(t *testing.T) {
	cert, key := selfSigned(t)
	r := startRun(t, func(c *RunConfig) { c.TLSCert, c.TLSKey, c.Tokens = cert, key, []string{testToken} })
	if !strings.HasPrefix(r.base, "https://") {
		t.Fatal(r.base)
	}
	if code, body, _ := r.do(t, "PUT", "/v1/groups/items/keys/k", `{"value":"x"}`, "Bearer "+testToken); code != 200 {
		t.Errorf("PUT over HTTPS = %d %s", code, body)
	}
	if code, _, _ := r.do(t, "PUT", "/v1/groups/items/keys/k", `{"value":"x"}`, ""); code != 401 {
		t.Errorf("PUT over HTTPS without a token = %d, want 401", code)
	}
	plain := &running{base: "http" + strings.TrimPrefix(r.base, "https"), client: &http.Client{Timeout: 5 * time.Second}}
	if code, body, _ := plain.do(t, "GET", "/readyz", "", ""); code == 200 {
		t.Errorf("plain HTTP to the TLS port = %d %s, want a refusal", code, body)
	}
	for _, bad := range []RunConfig{{TLSCert: cert}, {TLSCert: cert, TLSKey: cert}} {
		bad.Node, bad.Source, bad.HTTPAddr = node.Config{Name: "a", Standalone: true}, "sqlite://"+filepath.Join(t.TempDir(), "db"), "127.0.0.1:0"
		if err := Run(context.Background(), bad); err == nil || !strings.Contains(err.Error(), "TLS") {
			t.Errorf("Run with TLSCert %q TLSKey %q = %v, want a TLS error", bad.TLSCert, bad.TLSKey, err)
		}
	}
}

// rawConn opens a TCP connection to r's address.
func (r *running) rawConn(t *testing.T) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(r.base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// trickle writes one byte of s every interval until s ends, c fails or
// stop closes. It reports how many bytes it wrote.
func trickle(c net.Conn, s string, interval time.Duration, stop <-chan struct{}) <-chan int {
	n := make(chan int, 1)
	go func() {
		tick := time.NewTicker(interval)
		defer tick.Stop()
		i := 0
		defer func() { n <- i }()
		for ; i < len(s); i++ {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			if _, err := c.Write([]byte{s[i]}); err != nil {
				return
			}
		}
	}()
	return n
}

// TestHTTPSlowClients: a slowloris trickling a body, or its headers, one
// byte every 50ms is cut off by the read timeout (1s here, 15s by default)
// and the node keeps answering /readyz meanwhile. Without ReadTimeout the
// body would take 100 s and the test's 8 s deadline fails it.
//
// Scheduling-dependent (real timeouts); passes under load:
//
//	timeout 300 sh -c 'yes >/dev/null & yes >/dev/null & wait' &
//	go test -race -count=50 -run 'TestHTTPSlowClients|TestHTTPConnectionFlood' ./internal/server/
func TestHTTPSlowClients(t *testing.T) {
	r := startRun(t, func(c *RunConfig) { c.ReadTimeout = time.Second })
	stop := make(chan struct{})
	stopAll := sync.OnceFunc(func() { close(stop) })
	defer stopAll()
	body := strings.Repeat("x", 2000)
	cases := []struct {
		name, head, rest string
	}{
		{"slow body", "PUT /v1/groups/items/keys/k HTTP/1.1\r\nHost: x\r\nContent-Length: 2000\r\n\r\n", body},
		{"slow headers", "GET /readyz HTTP/1.1\r\n", strings.Repeat("X-Slow: 1\r\n", 200)},
	}
	before := runtime.NumGoroutine()
	var conns []net.Conn
	var written []<-chan int
	for _, cs := range cases {
		for range 5 {
			c := r.rawConn(t)
			if _, err := io.WriteString(c, cs.head); err != nil {
				t.Fatal(err)
			}
			conns = append(conns, c)
			written = append(written, trickle(c, cs.rest, 50*time.Millisecond, stop))
		}
	}
	during := runtime.NumGoroutine()
	if code, body, _ := r.do(t, "GET", "/readyz", "", ""); code != 200 {
		t.Errorf("/readyz during the slow clients = %d %s", code, body)
	}
	start := time.Now()
	for i, c := range conns {
		name := cases[i/5].name
		c.SetReadDeadline(start.Add(8 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		switch {
		case err == nil:
			resp.Body.Close()
			if name == "slow body" && resp.StatusCode != http.StatusBadRequest {
				t.Errorf("%s: answer %d, want 400 (body read timed out)", name, resp.StatusCode)
			}
		case errors.Is(err, os.ErrDeadlineExceeded):
			t.Errorf("%s: the server still waits for the client after %v", name, time.Since(start))
		default: // closed by the server: what a header timeout does
		}
	}
	stopAll()
	for i, w := range written {
		if n := <-w; n >= len(cases[i/5].rest) {
			t.Errorf("%s: the server read all %d bytes of the trickle", cases[i/5].name, n)
		}
	}
	t.Logf("goroutines: %d before, %d with 10 slow clients, %d after they were cut (cut after %v)",
		before, during, runtime.NumGoroutine(), time.Since(start).Round(10*time.Millisecond))
}

// TestHTTPConnectionFlood: 300 idle connections and 8 slow bodies against a
// node capped at 32 connections. Each new connection at the cap closes the
// longest-idle one, so the flood holds at most 32 descriptors and /readyz
// (on a new connection) still answers at once. With Accept blocked at the
// cap (netutil.LimitListener) /readyz would wait for the 5 s header timeout
// of the flood; with no cap the node would hold all 308.
//
// Scheduling-dependent (real timeouts); passes under load:
//
//	timeout 300 sh -c 'yes >/dev/null & yes >/dev/null & wait' &
//	go test -race -count=50 -run 'TestHTTPSlowClients|TestHTTPConnectionFlood' ./internal/server/
func TestHTTPConnectionFlood(t *testing.T) {
	const max, flood, slow = 32, 300, 8
	r := startRun(t, func(c *RunConfig) { c.MaxConns = max })
	r.client.CloseIdleConnections()
	stop := make(chan struct{})
	defer close(stop)
	before, rssBefore := runtime.NumGoroutine(), rssMiB()
	for range slow { // busy: these must not be evicted, nor block the rest
		c := r.rawConn(t)
		if _, err := io.WriteString(c, "PUT /v1/groups/items/keys/k HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		trickle(c, strings.Repeat("x", 1000), 100*time.Millisecond, stop)
	}
	for range flood {
		r.rawConn(t)
	}
	during := runtime.NumGoroutine()
	// A new connection (no keep-alive from startRun's polls), answered well
	// before the flood's 5 s header timeout would free a slot.
	r.client = &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	start := time.Now()
	if code, body, _ := r.do(t, "GET", "/readyz", "", ""); code != 200 {
		t.Fatalf("/readyz under the flood = %d %s after %v", code, body, time.Since(start))
	}
	took := time.Since(start)
	open := r.metric(t, "nearcache_http_connections")
	evicted := r.metric(t, "nearcache_http_connections_evicted_total")
	if open > max || evicted < flood+slow-max {
		t.Errorf("open %v (cap %d), evicted %v, want at most the cap open and at least %d evicted", open, max, evicted, flood+slow-max)
	}
	t.Logf("/readyz answered in %v; open %v, evicted %v; goroutines %d before, %d during, %d after; RSS %.1f MiB before, %.1f MiB after",
		took.Round(time.Millisecond), open, evicted, before, during, runtime.NumGoroutine(), rssBefore, rssMiB())
}

// lockedLog collects a logger's text output.
type lockedLog struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func (l *lockedLog) logger() *slog.Logger { return slog.New(slog.NewTextHandler(l, nil)) }

// TestHTTPLimits: headers over MaxHeaderBytes (plus net/http's 4 KiB slack) get 431, bodies over 1 MiB
// 413, on any endpoint.
func TestHTTPLimits(t *testing.T) {
	r := startRun(t, func(c *RunConfig) { c.MaxHeaderBytes = 4 << 10 })
	req, err := http.NewRequest("GET", r.base+"/readyz", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Big", strings.Repeat("x", 16<<10)) // net/http allows 4 KiB of slack
	resp, err := r.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("16 KiB header against a 4 KiB limit = %d, want 431", resp.StatusCode)
	}
	big := `{"value":"` + strings.Repeat("x", 1<<20) + `"}`
	if code, body, _ := r.do(t, "PUT", "/v1/groups/items/keys/k", big, ""); code != http.StatusRequestEntityTooLarge {
		t.Errorf("PUT of 1 MiB + 12 bytes = %d %s, want 413", code, body)
	}
}

// rssMiB returns this process's resident set size (Linux; -1 elsewhere).
func rssMiB() float64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return -1
	}
	m := regexp.MustCompile(`VmRSS:\s+(\d+) kB`).FindSubmatch(b)
	if m == nil {
		return -1
	}
	kb, _ := strconv.ParseFloat(string(m[1]), 64)
	return kb / 1024
}

// TestErrorLogRateLimited: the HTTP server's error lines (one per failed TLS
// handshake, say) are WARNs, at most 10 per 10 s; the next one logged says
// how many were dropped.
func TestErrorLogRateLimited(t *testing.T) {
	var logs lockedLog
	now := time.Unix(0, 0)
	e := &errorLog{log: logs.logger(), burst: 10, window: 10 * time.Second, now: func() time.Time { return now }}
	l := log.New(e, "", 0)
	for i := range 1000 {
		l.Printf("http: TLS handshake error from 127.0.0.1:%d: EOF", 40000+i)
	}
	now = now.Add(10 * time.Second)
	l.Print("http: TLS handshake error from 127.0.0.1:1: EOF")
	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	if len(lines) != 11 || !strings.Contains(lines[10], "suppressed_before=990") || !strings.Contains(lines[0], "level=WARN") {
		t.Errorf("%d lines, want 11, the last with suppressed_before=990:\n%s", len(lines), logs.String())
	}
}
