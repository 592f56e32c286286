package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestApplyEnv(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		env      map[string]string
		wantHTTP string
		wantJoin string
		wantErr  string
	}{
		{name: "default", wantHTTP: "127.0.0.1:8080"},
		{name: "env over default", env: map[string]string{"NEARCACHE_HTTP_ADDR": ":9000", "NEARCACHE_JOIN": "a,b"}, wantHTTP: ":9000", wantJoin: "a,b"},
		{name: "flag over env", args: []string{"--http-addr", ":7000"}, env: map[string]string{"NEARCACHE_HTTP_ADDR": ":9000"}, wantHTTP: ":7000"},
		{name: "bad env value", env: map[string]string{"NEARCACHE_MAX_STALENESS": "soon"}, wantHTTP: "127.0.0.1:8080", wantErr: `NEARCACHE_MAX_STALENESS="soon"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			getenv := func(k string) (string, bool) { v, ok := tt.env[k]; return v, ok }
			fs, _ := nodeCommandEnv(io.Discard, io.Discard, getenv)
			if err := fs.Parse(tt.args); err != nil {
				t.Fatal(err)
			}
			err := applyEnv(fs, getenv)
			if (err == nil) != (tt.wantErr == "") || err != nil && !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("applyEnv = %v, want error %q", err, tt.wantErr)
			}
			if got := fs.Lookup("http-addr").Value.String(); got != tt.wantHTTP {
				t.Errorf("http-addr = %q, want %q", got, tt.wantHTTP)
			}
			if got := fs.Lookup("join").Value.String(); got != tt.wantJoin {
				t.Errorf("join = %q, want %q", got, tt.wantJoin)
			}
		})
	}
}

func TestSeeds(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{in: "", want: nil},
		{in: " a , ,b:1 ", want: []string{"a:7946", "b:1"}},
		{in: "nearcache.default.svc.cluster.local", want: []string{"nearcache.default.svc.cluster.local:7946"}},
		{in: "10.0.0.1,[::1]:8000,::1,[fe80::1]", want: []string{"10.0.0.1:7946", "[::1]:8000", "[::1]:7946", "[fe80::1]:7946"}},
	}
	for _, tt := range tests {
		if got := withPort(splitList(tt.in), 7946); !slices.Equal(got, tt.want) {
			t.Errorf("withPort(splitList(%q)) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// unopenable is a source no node can open.
const unopenable = "sqlite:///nonexistent/dir/items.db"

// writeSecrets writes a gossip key file and an API token file.
func writeSecrets(t *testing.T) (keyFile, tokenFile string) {
	t.Helper()
	dir := t.TempDir()
	keyFile, tokenFile = filepath.Join(dir, "gossip.key"), filepath.Join(dir, "api.tokens")
	if err := os.WriteFile(keyFile, []byte(hex.EncodeToString(bytes.Repeat([]byte{7}, 32))+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(tokenFile, []byte("# API tokens\n"+apiToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return keyFile, tokenFile
}

// apiToken is the tests' API token.
const apiToken = "nearcache-test-token-0123456789"

// TestNodeUsageErrors runs the command in-process: bad configuration exits 2
// with a message, before anything starts.
func TestNodeUsageErrors(t *testing.T) {
	keyFile, tokenFile := writeSecrets(t)
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		wantErr string
	}{
		{name: "no source", args: []string{"node", "--name", "a"}, wantErr: "--source is required"},
		{name: "bad profile", args: []string{"node", "--source", "sqlite:///x", "--profile", "wan"}, wantErr: `--profile "wan"`},
		{name: "bad level", args: []string{"node", "--source", "sqlite:///x", "--log-level", "loud"}, wantErr: `--log-level "loud"`},
		{name: "bad key file", args: []string{"node", "--source", "sqlite:///x", "--secret-key-file", "/nonexistent/key"}, wantErr: "key file"},
		{name: "bad port", args: []string{"node", "--source", "sqlite:///x", "--gossip-port", "70000"}, wantErr: "ports must be"},
		{name: "bad env", args: []string{"node"}, env: map[string]string{"NEARCACHE_GOSSIP_PORT": "x"}, wantErr: "NEARCACHE_GOSSIP_PORT"},
		{name: "empty name from env", args: []string{"node", "--source", "sqlite:///x"}, env: map[string]string{"NEARCACHE_NAME": ""}, wantErr: "--name is required"},
		{name: "bad fill port", args: []string{"node", "--source", "sqlite:///x", "--fill-port", "7946"}, wantErr: "--fill-port must differ"},
		{name: "cert without key", args: []string{"node", "--source", "sqlite:///x", "--tls-cert", "c.pem"}, wantErr: "--tls-cert and --tls-key go together"},
		{name: "read token without tokens", args: []string{"node", "--source", "sqlite:///x", "--read-token-required"}, wantErr: "needs --api-token-file"},
		{name: "bad token file", args: []string{"node", "--source", "sqlite:///x", "--api-token-file", "/nonexistent/tokens"}, wantErr: "API token file"},
		// Secure by default. The source cannot open: were the refusal gone,
		// the node would fail on it (exit 1) before listening anywhere.
		{name: "gossip beyond loopback without a key", args: []string{"node", "--source", unopenable, "--bind-addr", "0.0.0.0"},
			wantErr: "refusing to start (listening beyond loopback unprotected): gossip 0.0.0.0:7946, fill 0.0.0.0:0 listen beyond loopback without a key"},
		{name: "from the environment too", args: []string{"node", "--source", unopenable}, env: map[string]string{"NEARCACHE_BIND_ADDR": "10.0.0.1"},
			wantErr: "gossip 10.0.0.1:7946, fill 10.0.0.1:0 listen beyond loopback without a key"},
		{name: "fill port beyond loopback without a key", args: []string{"node", "--source", unopenable, "--bind-addr", "::", "--fill-port", "7947"},
			wantErr: "gossip [::]:7946, fill [::]:7947 listen beyond loopback"},
		{name: "HTTP beyond loopback without tokens", args: []string{"node", "--source", unopenable, "--http-addr", "0.0.0.0:8080", "--secret-key-file", keyFile},
			wantErr: "HTTP 0.0.0.0:8080 listens beyond loopback without API tokens: anyone on the network can write and invalidate (give --api-token-file)"},
		{name: "HTTP on all interfaces without a key", args: []string{"node", "--source", unopenable, "--http-addr", ":8080", "--api-token-file", tokenFile},
			wantErr: "HTTP :8080 listens beyond loopback without a key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			getenv := func(k string) (string, bool) { v, ok := tt.env[k]; return v, ok }
			var stderr bytes.Buffer
			fs, do := nodeCommandEnv(io.Discard, &stderr, getenv)
			if err := fs.Parse(tt.args[1:]); err != nil {
				t.Fatal(err)
			}
			if code := do(context.Background()); code != exitUsage {
				t.Errorf("exit %d, want %d; stderr %s", code, exitUsage, stderr.String())
			}
			if !strings.Contains(stderr.String(), tt.wantErr) {
				t.Errorf("stderr %q lacks %q", stderr.String(), tt.wantErr)
			}
		})
	}
}

// TestNodeInsecure: --insecure starts a node exposed without a key or
// tokens, and its first line is a WARN naming each exposed listener. (The
// source cannot open, so the node stops right after: nothing binds.)
func TestNodeInsecure(t *testing.T) {
	var stderr bytes.Buffer
	fs, do := nodeCommandEnv(io.Discard, &stderr, func(string) (string, bool) { return "", false })
	if err := fs.Parse([]string{"--name", "a", "--source", unopenable, "--bind-addr", "0.0.0.0", "--http-addr", "0.0.0.0:8080", "--insecure"}); err != nil {
		t.Fatal(err)
	}
	if code := do(context.Background()); code != exitFailure {
		t.Errorf("exit %d, want %d (the source)", code, exitFailure)
	}
	first, _, _ := strings.Cut(stderr.String(), "\n")
	for _, want := range []string{"level=WARN", "insecure: HTTP 0.0.0.0:8080, gossip 0.0.0.0:7946, fill 0.0.0.0:0 listen beyond loopback without a key"} {
		if !strings.Contains(first, want) {
			t.Errorf("first line %q lacks %q", first, want)
		}
	}
	if !strings.Contains(stderr.String(), "HTTP 0.0.0.0:8080 listens beyond loopback without API tokens") || strings.Contains(stderr.String(), "refusing") {
		t.Errorf("stderr:\n%s", stderr.String())
	}
}

func TestNodeHelp(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"help", "node"}, &stdout, &stderr); code != exitOK {
		t.Fatalf("nearcache help node: exit %d, stderr %s", code, stderr.String())
	}
	for _, want := range []string{"usage: nearcache node", "NEARCACHE_HTTP_ADDR", "-secret-key-file", "-join", "-source", "-api-token-file", "-insecure", "-tls-cert", "-fill-port"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("help lacks %q:\n%s", want, stdout.String())
		}
	}
	stdout.Reset()
	if code := run(context.Background(), []string{"help"}, &stdout, &stderr); code != exitOK || !strings.Contains(stdout.String(), "node ") {
		t.Errorf("nearcache help: exit %d, lists no node command:\n%s", code, stdout.String())
	}
}
