package gossip

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

// TestMemberlistErrorsRateLimited: memberlist logs one ERR per refused
// packet; a flood of them becomes one line per kind per 10s, each counted.
// Catches: every refused packet costing an ERROR line (issue 12).
func TestMemberlistErrorsRateLimited(t *testing.T) {
	var out bytes.Buffer
	w := &logWriter{l: slog.New(slog.NewTextHandler(&out, nil))}
	for i := range 100 {
		fmt.Fprintf(w, "[ERR] memberlist: Decrypt packet failed: no installed keys could decrypt the message from=127.0.0.1:%d\n", 4000+i)
	}
	fmt.Fprintf(w, "[WARN] memberlist: Refuting a suspect message (from: n2)\n")
	fmt.Fprintf(w, "[DEBUG] memberlist: Stream connection from=127.0.0.1:1\n")
	if got := w.errors.Load(); got != 101 {
		t.Errorf("counted %d WARN/ERR lines, want 101", got)
	}
	if n := strings.Count(out.String(), "Decrypt packet failed"); n != 1 {
		t.Errorf("%d lines for 100 refused packets, want 1:\n%s", n, out.String())
	}
	if !strings.Contains(out.String(), "Refuting a suspect") {
		t.Error("another kind of line was suppressed too")
	}
}
