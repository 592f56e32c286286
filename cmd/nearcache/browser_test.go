package main

import (
	"bytes"
	"context"
	"fmt"
	"github.com/nearcache/nearcache/internal/needs"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

const chromiumPath = "/usr/bin/chromium"

// dumpDOM loads url in headless Chromium, lets the page's scripts run for 5 s
// of virtual time, and returns the DOM. Without Chromium it fails, unless
// NEARCACHE_SKIP_BROWSER=1.
func dumpDOM(t *testing.T, url string) string {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		if os.Getenv("NEARCACHE_SKIP_BROWSER") == "1" {
			t.Skipf("%s missing and NEARCACHE_SKIP_BROWSER=1", chromiumPath)
		}
		needs.Missing(t, chromiumPath, "make browser-deps (apt-get install chromium)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, chromiumPath, "--headless", "--no-sandbox", "--disable-gpu",
		"--disable-quic", "--no-first-run", "--disable-background-networking",
		"--disable-component-update", "--disable-sync", "--user-data-dir="+t.TempDir(),
		"--virtual-time-budget=5000", "--dump-dom", url)
	// Its own process group, so a timeout stops Chromium's helpers too: the
	// group's id is Chromium's pid.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if cmd.Process != nil {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // helpers left behind, if any
	}
	if err != nil {
		t.Fatalf("chromium: %v\nstderr:\n%s", err, stderr.String())
	}
	return stdout.String()
}

var (
	memberRE   = regexp.MustCompile(`class="member-name" data-member="([^"]+)"`)
	hitRatioRE = regexp.MustCompile(`class="num hit-ratio" data-group="items">([^<]*)<`)
	pollsRE    = regexp.MustCompile(`<span id="polls">(\d+)</span>`)
	servedRE   = regexp.MustCompile(`class="num member-served" data-member="([^"]+)">(\d+)<`)
)

// statusDOMProblems lists what a rendered status page lacks: every member
// name with its own "served as owner" figure (fetched from that member's
// API), a numeric hit ratio in [0, 1] for "items", and at least one completed
// poll of cluster.json (the figures are live, not the static HTML).
func statusDOMProblems(dom string, members []string) []string {
	var problems []string
	var seen []string
	for _, m := range memberRE.FindAllStringSubmatch(dom, -1) {
		seen = append(seen, m[1])
	}
	served := map[string]bool{}
	for _, m := range servedRE.FindAllStringSubmatch(dom, -1) {
		served[m[1]] = true
	}
	for _, want := range members {
		if !slices.Contains(seen, want) {
			problems = append(problems, fmt.Sprintf("member %s not listed (listed: %v)", want, seen))
		}
		if !served[want] {
			problems = append(problems, fmt.Sprintf("no figures from member %s", want))
		}
	}
	if m := hitRatioRE.FindStringSubmatch(dom); m == nil {
		problems = append(problems, "no hit ratio for items")
	} else if r, err := strconv.ParseFloat(m[1], 64); err != nil || r < 0 || r > 1 {
		problems = append(problems, fmt.Sprintf("hit ratio %q is not a number in [0, 1]", m[1]))
	}
	if m := pollsRE.FindStringSubmatch(dom); m == nil || m[1] == "0" {
		problems = append(problems, "the page never polled cluster.json")
	}
	return problems
}

func checkStatusDOM(t *testing.T, dom string, members []string) {
	t.Helper()
	if p := statusDOMProblems(dom, members); len(p) > 0 {
		t.Errorf("status page: %v\nDOM:\n%s", p, dom)
	}
}

func TestStatusDOMProblems(t *testing.T) {
	good := `<span id="polls">4</span>
<td class="member-name" data-member="n1">n1 (this node)</td><td class="num member-served" data-member="n1">3</td>
<td class="member-name" data-member="n2"><a href="x">n2</a></td><td class="num member-served" data-member="n2">0</td>
<td class="num hit-ratio" data-group="items">0.500</td>`
	tests := []struct {
		name string
		dom  string
		want int // problems
	}{
		{name: "good", dom: good, want: 0},
		{name: "member missing", dom: strings.Replace(good, `"member-name" data-member="n2"`, `"member-name" data-member="n9"`, 1), want: 1},
		{name: "member's figures missing", dom: strings.Replace(good, `"num member-served" data-member="n2">0`, `"muted">`, 1), want: 1},
		{name: "static page, no script ran", dom: `<span id="polls">0</span>`, want: 6},
		{name: "no reads yet", dom: strings.Replace(good, ">0.500<", ">n/a<", 1), want: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := statusDOMProblems(tt.dom, []string{"n1", "n2"}); len(got) != tt.want {
				t.Errorf("problems = %q, want %d", got, tt.want)
			}
		})
	}
}
