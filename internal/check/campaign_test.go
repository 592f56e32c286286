package check

import (
	"cmp"
	"context"
	"encoding/json"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

var (
	campaignDuration = flag.Duration("campaign.duration", 0, "run TestCampaignLong for this long (0 = skip it)")
	campaignOut      = flag.String("campaign.out", "", "directory for TestCampaignLong's report and history (\"\" = a temp dir)")
	healthyDuration  = flag.Duration("healthy.duration", 0, "run TestCampaignHealthy for this long (0 = skip it)")
	healthyOut       = flag.String("healthy.out", "", "directory for TestCampaignHealthy's report (\"\" = a temp dir)")
)

// brokenTag is the broken-build tag this test binary was built with ("" =
// the real build); set by the broken_*_test.go files.
var brokenTag string

// saveFailing writes a failing history and its report into dir.
func saveFailing(t *testing.T, dir string, r Report, h *History) {
	t.Helper()
	path := filepath.Join(dir, "history.jsonl")
	if err := h.Save(path); err != nil {
		t.Error(err)
		return
	}
	b, _ := json.MarshalIndent(r, "", "  ")
	if err := os.WriteFile(filepath.Join(dir, "report.json"), b, 0o644); err != nil {
		t.Error(err)
	}
	t.Logf("history saved to %s (re-check with LoadHistory + Check)", path)
}

// TestCampaignShort runs every fault briefly against the real build and
// requires zero violations.
func TestCampaignShort(t *testing.T) {
	if brokenTag != "" {
		t.Skip("a broken build: see TestCampaignBroken")
	}
	if testing.Short() {
		t.Skip("short mode")
	}
	r, h, err := RunCampaign(t.Context(), CampaignConfig{Seed: 1, Phase: 1500 * time.Millisecond, Converge: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(r)
	t.Logf("report: %s", b)
	if r.Reads < 1000 || r.Writes < 100 || len(r.Converge) != len(AllFaults()) {
		t.Errorf("the campaign did too little: %d reads, %d writes, %d convergences", r.Reads, r.Writes, len(r.Converge))
	}
	if r.Total() != 0 {
		dir, err := os.MkdirTemp("", "nearcache-campaign-") // kept: the evidence outlives the test
		if err != nil {
			dir = t.TempDir()
		}
		saveFailing(t, dir, r, h)
		t.Errorf("violations on the real build: %v; first: %+v", r.Violations, r.Details)
	}
	if r.Loads.Calls == 0 || r.Propagation.N == 0 {
		t.Errorf("no loads (%d) or no propagation samples (%d) recorded", r.Loads.Calls, r.Propagation.N)
	}
}

// brokenCases maps each broken-build tag to the faults that expose it and
// the guarantees the checker must report broken.
// A case with a test runs that test instead of TestCampaignBroken (on
// Linux only: the process campaign).
var brokenCases = map[string]struct {
	faults []Fault
	want   []string // any of these
	test   string   // "" = TestCampaignBroken
}{
	"nearcache_nofloor":     {[]Fault{FaultSlowDB, FaultDupReor}, []string{G1, G2, G7}, ""},
	"nearcache_nostalefill": {[]Fault{FaultSlowDB, FaultDupReor}, []string{G1, G2, G7}, ""},
	"nearcache_nofreshness": {[]Fault{FaultIsolate}, []string{G5}, ""},
	"nearcache_norepair":    {[]Fault{FaultLoss50}, []string{G4, G1, G5}, ""},
	// LogFed groups exist only behind a feed: the process campaign's
	// PostgreSQL mode, the feed's holder stopped (process_test.go).
	"nearcache_nologfresh": {nil, []string{G9}, "TestProcessPostgresBroken"},
}

const brokenMarker = "BROKEN-REPORT "

// TestCampaignBroken runs on a broken build only, and fails when the
// checker finds nothing: TestCheckerCatchesBrokenBuilds expects it to fail.
func TestCampaignBroken(t *testing.T) {
	if brokenTag == "" {
		t.Skip("not a broken build (set one of the nearcache_no* tags)")
	}
	c := brokenCases[brokenTag]
	if c.test != "" {
		t.Skipf("%s is caught by %s", brokenTag, c.test)
	}
	r, h, err := RunCampaign(t.Context(), CampaignConfig{Seed: 2, Faults: c.faults, Phase: 3 * time.Second, Converge: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(r)
	t.Log(brokenMarker + string(b))
	if r.Total() == 0 {
		t.Fatalf("the checker found no violation in the broken build %s", brokenTag)
	}
	saveFailing(t, t.TempDir(), r, h)
	t.Errorf("violations (as expected of %s): %v", brokenTag, r.Violations)
}

// TestCheckerCatchesBrokenBuilds builds the package with each broken tag and
// asserts that TestCampaignBroken failed with violations of the expected guarantee.
func TestCheckerCatchesBrokenBuilds(t *testing.T) {
	if brokenTag != "" || testing.Short() {
		t.Skip("real builds only, not in short mode")
	}
	for tag, c := range brokenCases {
		t.Run(tag, func(t *testing.T) {
			test := cmp.Or(c.test, "TestCampaignBroken")
			if c.test != "" && runtime.GOOS != "linux" {
				t.Skipf("%s runs on Linux only", test)
			}
			ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, "go", "test", "-count=1", "-v", "-tags", tag, "-run", "^"+test+"$", ".")
			out, err := cmd.CombinedOutput()
			if err == nil && strings.Contains(string(out), "--- SKIP: "+test) {
				// Only where the run may skip: without PostgreSQL (pgtest
				// fails instead of skipping with CI=true).
				t.Skipf("%s skipped on %s:\n%s", test, tag, out)
			}
			if err == nil {
				t.Fatalf("%s passed on %s: the checker missed the broken build\n%s", test, tag, out)
			}
			var r Report
			found := false
			for _, line := range strings.Split(string(out), "\n") {
				if i := strings.Index(line, brokenMarker); i >= 0 {
					if err := json.Unmarshal([]byte(line[i+len(brokenMarker):]), &r); err != nil {
						t.Fatalf("bad report: %v", err)
					}
					found = true
				}
			}
			if !found {
				t.Fatalf("no report from the broken build (it failed otherwise): %v\n%s", err, out)
			}
			hit := false
			for _, g := range c.want {
				hit = hit || r.Violations[g] > 0
			}
			t.Logf("%s: violations %v", tag, r.Violations)
			if !hit {
				t.Errorf("%s: violations %v, want some of %v", tag, r.Violations, c.want)
			}
		})
	}
}

// TestCampaignLong is the long run behind docs/consistency.md; off unless
// -campaign.duration is set.
func TestCampaignLong(t *testing.T) {
	if *campaignDuration == 0 || brokenTag != "" {
		t.Skip("set -campaign.duration")
	}
	ctx, cancel := context.WithTimeout(context.Background(), *campaignDuration*3+time.Minute)
	defer cancel()
	// 12 s healthy before each fault: longer than the 10 s per-write figure,
	// so healthy writes are judged at +10 s too.
	r, h, err := RunCampaign(ctx, CampaignConfig{Seed: 42, Duration: *campaignDuration, Calm: 12 * time.Second,
		Phase: 4 * time.Second, ReadPause: 2 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	dir := *campaignOut
	if dir == "" {
		dir = t.TempDir()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	b, _ := json.MarshalIndent(r, "", "  ")
	if err := os.WriteFile(filepath.Join(dir, "report.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("report in %s: %d ops, violations %v", dir, r.Ops, r.Violations)
	t.Log(r.Summary())
	if r.Total() != 0 {
		saveFailing(t, dir, r, h)
		t.Errorf("violations: %v", r.Violations)
	}
}

// TestCampaignHealthy is the healthy-cluster run behind docs/consistency.md's
// nines: the in-process cluster (real memberlist sockets on 127.0.0.1, no
// fault injected) with readers that never pause, for -healthy.duration. It
// writes report.json (and the history on a violation) into -healthy.out, and
// fails on any violation, or on any read staler than the propagation bound
// or write some node served the old version of a second after its commit.
func TestCampaignHealthy(t *testing.T) {
	if *healthyDuration == 0 || brokenTag != "" {
		t.Skip("set -healthy.duration")
	}
	ctx, cancel := context.WithTimeout(context.Background(), *healthyDuration*2+time.Minute)
	defer cancel()
	r, h, err := RunCampaign(ctx, CampaignConfig{Seed: 7, Faults: []Fault{}, Duration: *healthyDuration})
	if err != nil {
		t.Fatal(err)
	}
	dir := *healthyOut
	if dir == "" {
		dir = t.TempDir()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	b, _ := json.MarshalIndent(r, "", "  ")
	if err := os.WriteFile(filepath.Join(dir, "report.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("report in %s: %d reads (%.0f/s), %d writes over %v", dir, r.Reads, float64(r.Reads)/r.Span.Seconds(), r.Writes, r.Span)
	t.Log(r.Summary())
	if r.Total() != 0 || r.Healthy.Propagation.Beyond != 0 || r.Healthy.Write1s.Beyond != 0 {
		saveFailing(t, dir, r, h)
		t.Errorf("violations %v, %d reads beyond %v, %d writes served old at +1s",
			r.Violations, r.Healthy.Propagation.Beyond, PropagationBound, r.Healthy.Write1s.Beyond)
	}
}

// TestCampaignCalm: Calm gives the campaign healthy phases, whose reads and
// writes the report counts apart from the faulty ones. Timing-dependent (the
// share of healthy time); checked with
// go test -race -count=20 -run '^TestCampaignCalm$' ./internal/check/
func TestCampaignCalm(t *testing.T) {
	if brokenTag != "" || testing.Short() {
		t.Skip("real builds only, not in short mode")
	}
	if _, _, err := RunCampaign(t.Context(), CampaignConfig{Faults: []Fault{}}); err == nil {
		t.Error("a run without faults and without a Duration was accepted")
	}
	r, _, err := RunCampaign(t.Context(), CampaignConfig{Seed: 3, Faults: []Fault{FaultLoss5, FaultDelay},
		Calm: 1500 * time.Millisecond, Phase: 500 * time.Millisecond, Converge: 5 * time.Second, ReadPause: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Log(r.Summary())
	h, f := r.Healthy, r.Faulty
	// About two thirds of the time is healthy; without Calm, almost none.
	if h.Propagation.N < (h.Propagation.N+f.Propagation.N)/3 || f.Propagation.N == 0 {
		t.Errorf("healthy reads %d, faulty %d: want a third healthy at least", h.Propagation.N, f.Propagation.N)
	}
	if h.Propagation.N != r.HealthyReads || h.Propagation.N+f.Propagation.N != r.Reads-r.ReadErrors {
		t.Errorf("phases hold %d+%d reads; %d healthy, %d successful", h.Propagation.N, f.Propagation.N, r.HealthyReads, r.Reads-r.ReadErrors)
	}
	if h.Write1s.N == 0 {
		t.Errorf("no write judged at +1s in a healthy phase: %+v, %+v", h.Write1s, f.Write1s)
	}
	if r.Total() != 0 {
		t.Errorf("violations %v: %+v", r.Violations, r.Details)
	}
}
