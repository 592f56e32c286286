package metrics

import (
	"runtime"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestBuildInfoFrom(t *testing.T) {
	vcs := func(rev, modified string) []debug.BuildSetting {
		return []debug.BuildSetting{{Key: "vcs", Value: "git"}, {Key: "vcs.revision", Value: rev},
			{Key: "vcs.time", Value: "2026-12-04T04:00:00Z"}, {Key: "vcs.modified", Value: modified}}
	}
	tests := []struct {
		name string
		bi   *debug.BuildInfo
		want BuildInfo
	}{
		{"no build info", nil, BuildInfo{Version: "unknown"}},
		{"the nearcache binary at a tag", &debug.BuildInfo{GoVersion: "go1.26.1",
			Main: debug.Module{Path: ModulePath, Version: "v1.4.0"}, Settings: vcs("0d0aae1f00", "false")},
			BuildInfo{Version: "v1.4.0", Revision: "0d0aae1f00", GoVersion: "go1.26.1"}},
		{"the nearcache binary from a modified tree", &debug.BuildInfo{GoVersion: "go1.26.1",
			Main: debug.Module{Path: ModulePath, Version: "v1.4.1-0.20261204040000-0d0aae1f0000+dirty"}, Settings: vcs("0d0aae1f0000", "true")},
			BuildInfo{Version: "v1.4.1-0.20261204040000-0d0aae1f0000+dirty", Revision: "0d0aae1f0000", Modified: true, GoVersion: "go1.26.1"}},
		{"nearcache's tests", &debug.BuildInfo{GoVersion: "go1.26.1", Main: debug.Module{Path: ModulePath, Version: "(devel)"}},
			BuildInfo{Version: "(devel)", GoVersion: "go1.26.1"}},
		// A program using nearcache as a library: its own vcs settings are
		// not nearcache's revision.
		{"a library at a tag", &debug.BuildInfo{GoVersion: "go1.26.1",
			Main:     debug.Module{Path: "example.com/app", Version: "v0.3.0"},
			Deps:     []*debug.Module{{Path: "github.com/other/x", Version: "v1.0.0"}, {Path: ModulePath, Version: "v1.4.0"}},
			Settings: vcs("feedfacefeed", "true")},
			BuildInfo{Version: "v1.4.0", GoVersion: "go1.26.1"}},
		{"a library at a pseudo-version", &debug.BuildInfo{GoVersion: "go1.26.1",
			Main: debug.Module{Path: "example.com/app"},
			Deps: []*debug.Module{{Path: ModulePath, Version: "v0.0.0-20261204040000-0d0aae1f0000"}}},
			BuildInfo{Version: "v0.0.0-20261204040000-0d0aae1f0000", Revision: "0d0aae1f0000", GoVersion: "go1.26.1"}},
		{"a library replaced by a fork", &debug.BuildInfo{GoVersion: "go1.26.1",
			Main: debug.Module{Path: "example.com/app"},
			Deps: []*debug.Module{{Path: ModulePath, Version: "v1.4.0",
				Replace: &debug.Module{Path: "example.com/fork", Version: "v1.4.0-0.20261201000000-abcdefabcdef"}}}},
			BuildInfo{Version: "v1.4.0-0.20261201000000-abcdefabcdef", Revision: "abcdefabcdef", GoVersion: "go1.26.1"}},
		{"a library replaced by a directory", &debug.BuildInfo{GoVersion: "go1.26.1",
			Main: debug.Module{Path: "example.com/app"},
			Deps: []*debug.Module{{Path: ModulePath, Version: "v1.4.0", Replace: &debug.Module{Path: "../nearcache"}}}},
			BuildInfo{Version: "(devel)", GoVersion: "go1.26.1"}},
		{"a program without nearcache", &debug.BuildInfo{GoVersion: "go1.26.1", Main: debug.Module{Path: "example.com/app"}},
			BuildInfo{Version: "unknown", GoVersion: "go1.26.1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.want.GOOS, tt.want.GOARCH = runtime.GOOS, runtime.GOARCH
			if tt.want.GoVersion == "" {
				tt.want.GoVersion = runtime.Version()
			}
			if got := buildInfoFrom(tt.bi); got != tt.want {
				t.Errorf("buildInfoFrom = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestRevisionLabel(t *testing.T) {
	tests := []struct {
		b    BuildInfo
		want string
	}{
		{BuildInfo{}, "unknown"},
		{BuildInfo{Modified: true}, "unknown-dirty"},
		{BuildInfo{Revision: "0d0aae1"}, "0d0aae1"},
		{BuildInfo{Revision: "0d0aae1", Modified: true}, "0d0aae1-dirty"},
	}
	for _, tt := range tests {
		if got := tt.b.RevisionLabel(); got != tt.want {
			t.Errorf("%+v.RevisionLabel() = %q, want %q", tt.b, got, tt.want)
		}
	}
}

// TestBuildInfoMetric: nearcache_build_info is 1 with this binary's labels,
// exported by Attach's collector: present while attached, gone after Detach.
func TestBuildInfoMetric(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	m := New(reg)
	if n, err := testutil.GatherAndCount(reg, "nearcache_build_info"); err != nil || n != 0 {
		t.Errorf("before Attach: %d series (%v), want 0", n, err)
	}
	m.Attach(fixedStats)
	b := ReadBuildInfo()
	want := `
# HELP nearcache_build_info Always 1; its labels say which nearcache the node runs: version (nearcache's module version), revision (VCS commit, -dirty when built from a modified work tree), go_version.
# TYPE nearcache_build_info gauge
nearcache_build_info{go_version="` + runtime.Version() + `",revision="` + b.RevisionLabel() + `",version="` + b.Version + `"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "nearcache_build_info"); err != nil {
		t.Error(err)
	}
	m.Detach()
	if n, err := testutil.GatherAndCount(reg, "nearcache_build_info"); err != nil || n != 0 {
		t.Errorf("after Detach: %d series (%v), want 0", n, err)
	}
	// With the namespace of the other families.
	reg = prometheus.NewPedanticRegistry()
	m = NewWithConfig(reg, Config{Namespace: "svc"})
	m.Attach(fixedStats)
	defer m.Detach()
	if n, err := testutil.GatherAndCount(reg, "svc_build_info"); err != nil || n != 1 {
		t.Errorf("svc_build_info: %d series (%v), want 1", n, err)
	}
}
