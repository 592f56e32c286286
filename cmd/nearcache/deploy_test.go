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
	for _, name := range []string{"name", "bind-addr", "gossip-port", "advertise-addr", "http-addr", "join", "secret-key-file", "source", "table", "max-staleness", "log-level"} {
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
	for _, want := range []string{"NEARCACHE_NAME", "NEARCACHE_JOIN", "NEARCACHE_SECRET_KEY_FILE", "NEARCACHE_SOURCE", "NEARCACHE_HTTP_ADDR", "NEARCACHE_ADVERTISE_ADDR"} {
		if !flags[want] {
			t.Errorf("the StatefulSet does not set %s", want)
		}
	}
	for _, want := range []string{"path: /readyz", "path: /healthz", "containerPort: 7946, protocol: UDP", "containerPort: 7946, protocol: TCP",
		"terminationGracePeriodSeconds:", "preStop:", "serviceName: nearcache-gossip"} {
		if !strings.Contains(manifest, want) {
			t.Errorf("statefulset.yaml lacks %q", want)
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
