package main

import (
	"io"
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestDeployManifest keeps deploy/kubernetes in step with the binary: every
// NEARCACHE_* variable the StatefulSet sets is a flag of `nearcache node`,
// and the probes and ports point at what the server serves.
func TestDeployManifest(t *testing.T) {
	raw, err := os.ReadFile("../../deploy/kubernetes/statefulset.yaml")
	if err != nil {
		t.Fatal(err)
	}
	manifest := string(raw)
	fs, _ := nodeCommandEnv(io.Discard, io.Discard, func(string) (string, bool) { return "", false })
	flags := map[string]bool{}
	for _, name := range []string{"name", "bind-addr", "gossip-port", "fill-port", "advertise-addr", "http-addr", "join", "secret-key-file", "api-token-file", "source", "table", "max-staleness", "log-level"} {
		if fs.Lookup(name) == nil {
			t.Errorf("flag --%s is gone", name)
		}
	}
	for _, name := range regexp.MustCompile(`name: (NEARCACHE_[A-Z_]+)`).FindAllStringSubmatch(manifest, -1) {
		flags[name[1]] = true
		flag := strings.ToLower(strings.ReplaceAll(strings.TrimPrefix(name[1], envPrefix), "_", "-"))
		if fs.Lookup(flag) == nil {
			t.Errorf("the StatefulSet sets %s, but nearcache node has no --%s", name[1], flag)
		}
	}
	// It binds beyond loopback, so it must carry the key and the API tokens
	// (or the pods refuse to start) and a fixed fill port for the policy.
	for _, want := range []string{"NEARCACHE_NAME", "NEARCACHE_JOIN", "NEARCACHE_SECRET_KEY_FILE", "NEARCACHE_API_TOKEN_FILE", "NEARCACHE_FILL_PORT",
		"NEARCACHE_SOURCE", "NEARCACHE_HTTP_ADDR", "NEARCACHE_ADVERTISE_ADDR"} {
		if !flags[want] {
			t.Errorf("the StatefulSet does not set %s", want)
		}
	}
	if strings.Contains(manifest, "NEARCACHE_INSECURE") {
		t.Error("the StatefulSet sets NEARCACHE_INSECURE")
	}
	for _, want := range []string{"path: /readyz", "path: /healthz", "containerPort: 7946, protocol: UDP", "containerPort: 7946, protocol: TCP",
		"containerPort: 7947, protocol: TCP", `name: NEARCACHE_FILL_PORT
              value: "7947"`, "seccompProfile: { type: RuntimeDefault }", "topologySpreadConstraints:",
		"secretName: nearcache-api-token", "secretName: nearcache-gossip-key",
		"terminationGracePeriodSeconds:", "preStop:", "serviceName: nearcache-gossip"} {
		if !strings.Contains(manifest, want) {
			t.Errorf("statefulset.yaml lacks %q", want)
		}
	}
	for file, wants := range map[string][]string{
		"../../deploy/kubernetes/networkpolicy.yaml":  {"port: 7946, protocol: TCP", "port: 7946, protocol: UDP", "port: 7947, protocol: TCP", "port: 8080, protocol: TCP"},
		"../../deploy/kubernetes/kustomization.yaml":  {"networkpolicy.yaml", "statefulset.yaml"},
		"../../deploy/kubernetes/secret.example.yaml": {"name: nearcache-api-token", "api.tokens:", "name: nearcache-gossip-key"},
		"../../docs/deploy.md":                        {"--insecure", "--api-token-file", "--fill-port", "nearcache-api-token", "seccompProfile", "7947"},
	} {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range wants {
			if !strings.Contains(string(b), w) {
				t.Errorf("%s lacks %q", file, w)
			}
		}
	}
	svc, err := os.ReadFile("../../deploy/kubernetes/service-gossip.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"clusterIP: None", "publishNotReadyAddresses: true", "name: nearcache-gossip"} {
		if !strings.Contains(string(svc), want) {
			t.Errorf("service-gossip.yaml lacks %q", want)
		}
	}
}

// TestDocumentedCommandsStart: every `nearcache node` command in
// docs/deploy.md, and the StatefulSet's configuration, passes the secure
// defaults: run in-process with their key, token and certificate files
// replaced by real ones and a source that cannot open, each fails on the
// source (exit 1), never with a refusal (exit 2) or an insecure WARN.
func TestDocumentedCommandsStart(t *testing.T) {
	keyFile, tokenFile := writeSecrets(t)
	cert, key, _ := testCert(t)
	real := func(v string) string {
		switch {
		case strings.HasSuffix(v, "gossip.key"):
			return keyFile
		case strings.HasSuffix(v, "api.tokens"):
			return tokenFile
		case strings.HasSuffix(v, "tls.crt"):
			return cert
		case strings.HasSuffix(v, "tls.key"):
			return key
		}
		return v
	}
	check := func(what string, args []string, env map[string]string) {
		t.Helper()
		var stderr strings.Builder
		fs, do := nodeCommandEnv(io.Discard, &stderr, func(k string) (string, bool) { v, ok := env[k]; return v, ok })
		if err := fs.Parse(args); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		code := do(t.Context())
		if code != exitFailure || !strings.Contains(stderr.String(), "source") || strings.Contains(stderr.String(), "insecure") {
			t.Errorf("%s: exit %d, want %d on the source; stderr:\n%s", what, code, exitFailure, stderr.String())
		}
	}

	doc, err := os.ReadFile("../../docs/deploy.md")
	if err != nil {
		t.Fatal(err)
	}
	text := strings.ReplaceAll(string(doc), "\\\n", " ")
	n := 0
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if !strings.HasPrefix(line, "nearcache node ") {
			continue
		}
		n++
		var args []string
		fields := strings.Fields(strings.TrimPrefix(line, "nearcache node "))
		for i := 0; i < len(fields); i++ {
			f := fields[i]
			if strings.HasPrefix(f, "#") {
				break
			}
			if f == "--source" && i+1 < len(fields) {
				args = append(args, f, unopenable)
				i++
				continue
			}
			args = append(args, real(f))
		}
		check("docs/deploy.md: "+line, args, nil)
	}
	if n < 2 {
		t.Errorf("found %d nearcache node commands in docs/deploy.md, want the safe one and the loopback one", n)
	}

	manifest, err := os.ReadFile("../../deploy/kubernetes/statefulset.yaml")
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"NEARCACHE_NAME": "nearcache-0", "NEARCACHE_SOURCE": unopenable}
	for _, m := range regexp.MustCompile(`(?m)^\s+- name: (NEARCACHE_[A-Z_]+)\n\s+value: "?([^"\n]*)"?$`).FindAllStringSubmatch(string(manifest), -1) {
		env[m[1]] = real(m[2])
	}
	if env["NEARCACHE_BIND_ADDR"] != "0.0.0.0" || env["NEARCACHE_FILL_PORT"] != "7947" {
		t.Fatalf("the StatefulSet's environment = %v", env)
	}
	check("deploy/kubernetes/statefulset.yaml", nil, env)
}
