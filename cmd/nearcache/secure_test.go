package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// testCert writes a self-signed certificate for 127.0.0.1 and its key, and
// returns a pool that trusts it.
func testCert(t *testing.T) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "nearcache test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &priv.PublicKey, priv)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	if err := os.WriteFile(certFile, certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		t.Fatal(err)
	}
	pool = x509.NewCertPool()
	pool.AppendCertsFromPEM(certPEM)
	return certFile, keyFile, pool
}

// TestNodeSecure runs `nearcache node` as an operator would with the
// documented secure flags, on 127.0.0.1: HTTPS only, writes need the API
// token (401 and a challenge without), reads and probes stay open, and a
// flood of idle connections beyond --http-max-conns does not keep /readyz
// from answering.
func TestNodeSecure(t *testing.T) {
	bin := binary(t)
	keyFile, tokenFile := writeSecrets(t)
	cert, key, pool := testCert(t)
	httpPort, gossipPort, fillPort := freePort(t), freePort(t), freePort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", httpPort)
	p := &proc{
		name: "s1",
		http: "https://" + addr,
		cmd: exec.Command(bin, "node", "--name", "s1", "--source", "sqlite://"+filepath.Join(t.TempDir(), "db"),
			"--gossip-port", fmt.Sprint(gossipPort), "--fill-port", fmt.Sprint(fillPort), "--http-addr", addr,
			"--secret-key-file", keyFile, "--api-token-file", tokenFile, "--tls-cert", cert, "--tls-key", key,
			"--http-max-conns", "16", "--profile", "local"),
		stderr: &lockedBuffer{},
		exited: make(chan struct{}),
	}
	p.cmd.Stdout, p.cmd.Stderr = p.stderr, p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.exited) }()
	t.Cleanup(p.stop)

	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, DisableKeepAlives: true}}
	defer client.CloseIdleConnections()
	send := func(method, path, body, token string) (int, http.Header, string) {
		var rd io.Reader
		if body != "" {
			rd = strings.NewReader(body)
		}
		req, err := http.NewRequest(method, p.http+path, rd)
		if err != nil {
			t.Fatal(err)
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := client.Do(req)
		if err != nil {
			return 0, nil, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header, string(b)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		if code, _, _ := send("GET", "/readyz", "", ""); code == 200 {
			break
		}
		if !p.running() || time.Now().After(deadline) {
			t.Fatalf("not ready (running %v): %v\n%s", p.running(), p.err, p.stderr.String())
		}
		time.Sleep(50 * time.Millisecond) // polling another process
	}
	const k = "/v1/groups/items/keys/order-17"
	if code, h, body := send("PUT", k, `{"value":"x"}`, ""); code != 401 || !strings.Contains(h.Get("WWW-Authenticate"), "Bearer") {
		t.Errorf("PUT without a token = %d %q %s, want 401 with a Bearer challenge", code, h.Get("WWW-Authenticate"), body)
	}
	if code, _, body := send("PUT", k, `{"value":"x"}`, "not-the-token-0123456789"); code != 401 {
		t.Errorf("PUT with a wrong token = %d %s, want 401", code, body)
	}
	if code, _, body := send("PUT", k, `{"value":"x"}`, apiToken); code != 200 {
		t.Errorf("PUT with the token = %d %s, want 200", code, body)
	}
	if code, _, body := send("GET", k, "", ""); code != 200 || !strings.Contains(body, `"version":1`) {
		t.Errorf("GET (reads are open) = %d %s", code, body)
	}
	if code, _, _ := send("GET", "/debug/cluster.json", "", ""); code != 401 {
		t.Errorf("/debug/cluster.json without a token = %d, want 401", code)
	}
	plain := &http.Client{Timeout: 5 * time.Second}
	if resp, err := plain.Get("http://" + addr + "/readyz"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == 200 {
			t.Error("plain HTTP answered 200 on the TLS port")
		}
	}
	var flood []net.Conn
	for range 100 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		flood = append(flood, c)
	}
	defer func() {
		for _, c := range flood {
			c.Close()
		}
	}()
	start := time.Now()
	if code, _, body := send("GET", "/readyz", "", ""); code != 200 {
		t.Errorf("/readyz behind 100 idle connections (cap 16) = %d %s after %v", code, body, time.Since(start))
	}
	_, _, metrics := send("GET", "/metrics", "", "")
	for _, want := range []string{"nearcache_http_connections_evicted_total", "nearcache_http_auth_failures_total 3"} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	// 200 failed TLS handshakes cost at most 10 log lines.
	for range 200 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = c.Write([]byte("\x16\x03\x01\x00\x05garbage"))
		_, _ = io.Copy(io.Discard, c) // until the server closes it
		c.Close()
	}

	// SIGHUP re-reads the token file: a rotation without a restart.
	const newToken = "rotated-token-0123456789abcdef"
	if err := os.WriteFile(tokenFile, []byte(newToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; {
		code, _, body := send("PUT", k, `{"value":"y"}`, newToken)
		if code == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("PUT with the new token after SIGHUP = %d %s\n%s", code, body, p.stderr.String())
		}
		time.Sleep(20 * time.Millisecond) // polling another process
	}
	if code, _, _ := send("PUT", k, `{"value":"z"}`, apiToken); code != 401 {
		t.Errorf("PUT with the removed token after SIGHUP = %d, want 401", code)
	}
	// A broken file keeps the tokens in force.
	if err := os.WriteFile(tokenFile, []byte("short\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(p.stderr.String(), "API tokens not reloaded"); {
		if time.Now().After(deadline) {
			t.Fatalf("no WARN for a broken token file:\n%s", p.stderr.String())
		}
		time.Sleep(20 * time.Millisecond) // polling another process's log
	}
	if code, _, body := send("PUT", k, `{"value":"z"}`, newToken); code != 200 {
		t.Errorf("PUT with the token in force after a broken reload = %d %s", code, body)
	}

	// --fill-port: the owner-fill listener is on the port given.
	if ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", fillPort)); err == nil {
		ln.Close()
		t.Errorf("nothing listens on --fill-port %d", fillPort)
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	<-p.exited
	out := p.stderr.String()
	if p.err != nil || !strings.Contains(out, "http=https://"+addr) || strings.Contains(out, "insecure") {
		t.Errorf("exit %v; log:\n%s", p.err, out)
	}
	if n := strings.Count(out, "TLS handshake error"); n == 0 || n > 10 {
		t.Errorf("%d lines of TLS handshake errors for 200 bad handshakes, want 1 to 10:\n%s", n, out)
	}
}
