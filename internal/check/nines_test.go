package check

import (
	"math"
	"strings"
	"testing"
	"time"
)

const sec = 1000 * ms

// sameShare reports whether got is n items of which beyond were beyond, with
// the nines that says.
func sameShare(t *testing.T, what string, got Share, n, beyond int) {
	t.Helper()
	want := Share{N: n, Beyond: beyond}
	want.finish()
	if got.N != want.N || got.Beyond != want.Beyond || got.AtLeast != want.AtLeast || math.Abs(got.Nines-want.Nines) > 1e-9 {
		t.Errorf("%s: got %+v, want %+v", what, got, want)
	}
}

// TestNinesPerRead: a read 150 ms staler than the write that superseded its
// version is beyond the propagation bound (not MaxStaleness) in the phase it
// started in; one 50 ms stale is within both.
func TestNinesPerRead(t *testing.T) {
	h := &History{Params: Params{MaxStaleness: time.Second}, Events: []Event{
		{Kind: KindFault, Fault: "loss", Start: 10 * sec, End: 20 * sec},
		w("a", "k", 1, 0, 0, 1*ms, false, ""),
		w("a", "k", 2, 1*sec, 1*sec, 1*sec+ms, false, ""),
		rd("b", "k", 1, 1*sec+50*ms, 1*sec+51*ms),   // healthy, 50 ms stale: within both
		rd("c", "k", 1, 1*sec+150*ms, 1*sec+151*ms), // healthy, 150 ms stale: beyond 100 ms only
		rd("b", "k", 2, 2*sec, 2*sec+ms),
		w("a", "k", 3, 11*sec, 11*sec, 11*sec+ms, false, ""),
		rd("b", "k", 2, 11*sec+50*ms, 11*sec+51*ms),   // faulty, 50 ms: within both
		rd("c", "k", 2, 12*sec+500*ms, 12*sec+501*ms), // faulty, 1.5 s: beyond both
		rd("b", "k", 3, 30*sec, 30*sec+ms),
	}}
	r := Check(h)
	if r.Total() != 0 {
		t.Fatalf("violations %v: %+v", r.Violations, r.Details)
	}
	sameShare(t, "healthy reads within 100ms", r.Healthy.Propagation, 4, 1)
	sameShare(t, "healthy reads within MaxStaleness", r.Healthy.Bound, 4, 0)
	sameShare(t, "faulty reads within 100ms", r.Faulty.Propagation, 2, 1)
	sameShare(t, "faulty reads within MaxStaleness", r.Faulty.Bound, 2, 1)
	if r.Healthy.Bound.Nines != math.Log10(4) || !r.Healthy.Bound.AtLeast {
		t.Errorf("no read beyond: nines %v (at least %v), want log10(4)", r.Healthy.Bound.Nines, r.Healthy.Bound.AtLeast)
	}
	if s := r.Summary(); !strings.Contains(s, "healthy reads: 1 of 4 beyond (0.60 nines) beyond 100ms") {
		t.Errorf("summary %q", s)
	}
}

// TestNinesPerWrite: Meta's unit. A write one node still served the old
// version of 2 s after its commit counts against the 1 s figure and not the
// 10 s one; one served 11 s after counts against both; a write too close to
// the history's end is not judged; a write whose window meets a fault is
// counted in the faulty phase.
func TestNinesPerWrite(t *testing.T) {
	h := &History{Params: Params{MaxStaleness: time.Second}, Events: []Event{
		w("a", "k", 1, 0, 0, 1*ms, false, ""),
		w("a", "k", 2, 1*sec, 1*sec, 1*sec+ms, false, ""),
		rd("b", "k", 1, 3*sec, 3*sec+ms), // v2 still not on b 2 s after its commit
		rd("b", "k", 2, 4*sec, 4*sec+ms),
		w("a", "k", 3, 5*sec, 5*sec, 5*sec+ms, false, ""),
		rd("c", "k", 2, 16*sec, 16*sec+ms),                                     // v3 still not on c 11 s after its commit
		w("a", "k", 4, 39*sec+500*ms, 39*sec+500*ms, 39*sec+501*ms, false, ""), // too late to judge
		rd("a", "k", 4, 40*sec, 40*sec+ms),
		// In a fault: j's v10 not on b 1.5 s after its commit, on it by 35 s.
		{Kind: KindFault, Fault: "loss", Start: 20 * sec, End: 30 * sec},
		w("a", "j", 10, 19*sec+500*ms, 19*sec+500*ms, 19*sec+501*ms, false, ""),
		rd("b", "j", 9, 21*sec, 21*sec+ms),
		rd("b", "j", 10, 35*sec, 35*sec+ms),
	}}
	r := Check(h)
	if r.Total() != 0 {
		t.Fatalf("violations %v: %+v", r.Violations, r.Details)
	}
	sameShare(t, "healthy writes on every node at +1s", r.Healthy.Write1s, 3, 2)
	sameShare(t, "healthy writes on every node at +10s", r.Healthy.Write10s, 3, 1)
	sameShare(t, "faulty writes on every node at +1s", r.Faulty.Write1s, 1, 1)
	sameShare(t, "faulty writes on every node at +10s", r.Faulty.Write10s, 1, 0)
}
