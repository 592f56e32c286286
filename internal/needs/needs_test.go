package needs

import (
	"strings"
	"testing"
)

// recorder is a testing.TB that records how a test ended.
type recorder struct {
	testing.TB
	skipped, failed bool
	msg             string
}

func (r *recorder) Helper() {}
func (r *recorder) Skipf(f string, a ...any) {
	r.skipped, r.msg = true, f
}
func (r *recorder) Fatalf(f string, a ...any) {
	r.failed, r.msg = true, f
}

func TestMissing(t *testing.T) {
	for _, tt := range []struct {
		ci                string
		wantSkip, wantErr bool
	}{
		{"", true, false},
		{"false", true, false},
		{"true", false, true},
	} {
		t.Setenv("CI", tt.ci)
		r := &recorder{TB: t}
		Missing(r, "redis-server", "make bench-deps")
		if r.skipped != tt.wantSkip || r.failed != tt.wantErr {
			t.Errorf("CI=%q: skipped %v failed %v, want %v %v", tt.ci, r.skipped, r.failed, tt.wantSkip, tt.wantErr)
		}
		if !strings.Contains(r.msg, "install it with") {
			t.Errorf("CI=%q: message %q does not say what to install", tt.ci, r.msg)
		}
	}
}
