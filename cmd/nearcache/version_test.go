package main

import (
	"bytes"
	"encoding/json"
	"os/exec"
	"runtime"
	"strings"
	"testing"

	"github.com/nearcache/nearcache/metrics"
)

func TestPrintVersion(t *testing.T) {
	b := metrics.BuildInfo{Version: "v1.4.1-0.20261204040000-0d0aae1f0000+dirty", Revision: "0d0aae1f0000",
		Modified: true, GoVersion: "go1.26.1", GOOS: "linux", GOARCH: "arm64"}
	tests := []struct {
		name   string
		b      metrics.BuildInfo
		asJSON bool
		want   string
	}{
		{"text", b, false, "version  v1.4.1-0.20261204040000-0d0aae1f0000+dirty\nrevision 0d0aae1f0000-dirty\ngo       go1.26.1\nplatform linux/arm64\n"},
		{"text, unknown revision", metrics.BuildInfo{Version: "(devel)", GoVersion: "go1.26.1", GOOS: "linux", GOARCH: "amd64"}, false,
			"version  (devel)\nrevision unknown\ngo       go1.26.1\nplatform linux/amd64\n"},
		{"json", b, true, `{
  "version": "v1.4.1-0.20261204040000-0d0aae1f0000+dirty",
  "revision": "0d0aae1f0000",
  "modified": true,
  "go_version": "go1.26.1",
  "goos": "linux",
  "goarch": "arm64"
}
`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			if code := printVersion(&out, tt.b, tt.asJSON); code != exitOK {
				t.Errorf("printVersion = %d, want %d", code, exitOK)
			}
			if out.String() != tt.want {
				t.Errorf("printVersion wrote\n%s\nwant\n%s", out.String(), tt.want)
			}
		})
	}
}

// TestVersionCommand runs `nearcache version` through run: the command is
// dispatched, listed in the usage, and prints this binary's build info.
func TestVersionCommand(t *testing.T) {
	b := metrics.ReadBuildInfo()
	tests := []struct {
		name     string
		args     []string
		code     int
		stdout   string // substring
		stderr   string // substring
		jsonWant bool
	}{
		{name: "text", args: []string{"version"}, code: exitOK,
			stdout: "version  " + b.Version + "\nrevision " + b.RevisionLabel() + "\ngo       " + runtime.Version() + "\nplatform " + runtime.GOOS + "/" + runtime.GOARCH + "\n"},
		{name: "json", args: []string{"version", "--json"}, code: exitOK, jsonWant: true},
		{name: "help", args: []string{"help", "version"}, code: exitOK, stdout: "usage: nearcache version [--json]"},
		{name: "listed", args: []string{"help"}, code: exitOK, stdout: "version"},
		{name: "arguments", args: []string{"version", "now"}, code: exitUsage, stderr: `unexpected arguments ["now"]`},
		{name: "bad flag", args: []string{"version", "--yaml"}, code: exitUsage, stderr: "flag provided but not defined: -yaml"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if code := run(t.Context(), tt.args, &stdout, &stderr); code != tt.code {
				t.Errorf("run(%q) = %d, want %d; stderr: %s", tt.args, code, tt.code, stderr.String())
			}
			if !strings.Contains(stdout.String(), tt.stdout) {
				t.Errorf("run(%q) stdout = %q, want it to contain %q", tt.args, stdout.String(), tt.stdout)
			}
			if !strings.Contains(stderr.String(), tt.stderr) {
				t.Errorf("run(%q) stderr = %q, want it to contain %q", tt.args, stderr.String(), tt.stderr)
			}
			if tt.jsonWant {
				var got versionJSON
				if err := json.Unmarshal(stdout.Bytes(), &got); err != nil {
					t.Fatalf("stdout is not JSON: %v\n%s", err, stdout.String())
				}
				want := versionJSON{Version: b.Version, Revision: b.Revision, Modified: b.Modified,
					GoVersion: runtime.Version(), GOOS: runtime.GOOS, GOARCH: runtime.GOARCH}
				if got != want {
					t.Errorf("version --json = %+v, want %+v", got, want)
				}
			}
		})
	}
}

// TestVersionBinary: the built binary reports what the go command stamped
// into it (go version -m): its module version and, when the build was
// stamped with VCS information (-buildvcs), the revision and modified flag.
func TestVersionBinary(t *testing.T) {
	bin := binary(t)
	out, err := exec.Command(bin, "version", "--json").Output()
	if err != nil {
		t.Fatalf("nearcache version --json: %v", err)
	}
	var got versionJSON
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	m, err := exec.Command("go", "version", "-m", bin).Output()
	if err != nil {
		t.Fatalf("go version -m: %v", err)
	}
	want := versionJSON{GOOS: runtime.GOOS, GOARCH: runtime.GOARCH}
	for line := range strings.Lines(string(m)) {
		f := strings.Fields(line)
		switch {
		case strings.HasPrefix(line, bin+":") && len(f) == 2:
			want.GoVersion = f[1]
		case len(f) >= 3 && f[0] == "mod" && f[1] == metrics.ModulePath:
			want.Version = f[2]
		case len(f) == 2 && f[0] == "build":
			if k, v, ok := strings.Cut(f[1], "="); ok {
				switch k {
				case "vcs.revision":
					want.Revision = v
				case "vcs.modified":
					want.Modified = v == "true"
				}
			}
		}
	}
	if got != want {
		t.Errorf("nearcache version --json = %+v, want (from go version -m) %+v\n%s", got, want, m)
	}
}
