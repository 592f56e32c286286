package check

import (
	"bytes"
	"path/filepath"
	"reflect"
	"testing"
	"time"
)

const ms = int64(time.Millisecond)

func w(node, key string, ver uint64, commit, start, end int64, ack bool, err string) Event {
	return Event{Kind: KindWrite, Node: node, Key: key, Version: ver, Commit: commit, Start: start, End: end, AckAll: ack, Err: err}
}

func rd(node, key string, ver uint64, start, end int64) Event {
	return Event{Kind: KindRead, Node: node, Key: key, Version: ver, Start: start, End: end}
}

// TestCheck runs each check on a hand-made history that breaks it and on one
// that comes close without breaking it.
func TestCheck(t *testing.T) {
	p := Params{MaxStaleness: 100 * time.Duration(ms), Slack: 10 * time.Duration(ms)}
	tests := []struct {
		name   string
		events []Event
		want   map[string]int
	}{
		{"G2 read on writer after Invalidate returned", []Event{
			w("a", "k", 2, 0, 1*ms, 2*ms, false, ""), rd("a", "k", 1, 3*ms, 4*ms)},
			map[string]int{G2: 1, G1: 1}},
		{"G2 read overlapping the Invalidate is fine", []Event{
			w("a", "k", 2, 0, 1*ms, 5*ms, false, ""), rd("a", "k", 1, 3*ms, 4*ms)},
			map[string]int{}},
		{"G2 read on another node is not G2", []Event{
			w("a", "k", 2, 0, 1*ms, 2*ms, false, ""), rd("b", "k", 1, 3*ms, 4*ms)},
			map[string]int{}},
		{"G7 any node after AckAll returned", []Event{
			w("a", "k", 2, 0, 1*ms, 2*ms, true, ""), rd("b", "k", 1, 3*ms, 4*ms)},
			map[string]int{G7: 1, G1: 1}},
		{"G7 not after a failed AckAll", []Event{
			w("a", "k", 2, 0, 1*ms, 2*ms, true, "ack missing b"), rd("b", "k", 1, 3*ms, 4*ms)},
			map[string]int{}},
		{"G1 read below an earlier read on the node", []Event{
			rd("b", "k", 2, 1*ms, 2*ms), rd("b", "k", 1, 3*ms, 4*ms)},
			map[string]int{G1: 1}},
		{"G1 concurrent reads may disagree", []Event{
			rd("b", "k", 2, 1*ms, 3*ms), rd("b", "k", 1, 2*ms, 4*ms)},
			map[string]int{}},
		{"G1 other nodes' reads are no floor", []Event{
			rd("a", "k", 2, 1*ms, 2*ms), rd("b", "k", 1, 3*ms, 4*ms)},
			map[string]int{}},
		{"G1 failed reads are no floor", []Event{
			{Kind: KindRead, Node: "b", Key: "k", Start: 1 * ms, End: 2 * ms, Err: "boom"}, rd("b", "k", 1, 3*ms, 4*ms)},
			map[string]int{}},
		{"G5 cut-off node serves a long-superseded version", []Event{
			{Kind: KindFault, Fault: "isolate", Nodes: []string{"c"}, Start: 0, End: 1000 * ms},
			w("a", "k", 2, 10*ms, 11*ms, 12*ms, false, ""), rd("c", "k", 1, 200*ms, 201*ms)},
			map[string]int{G5: 1}},
		{"G5 within the bound", []Event{
			{Kind: KindFault, Fault: "isolate", Nodes: []string{"c"}, Start: 0, End: 1000 * ms},
			w("a", "k", 2, 10*ms, 11*ms, 12*ms, false, ""), rd("c", "k", 1, 115*ms, 116*ms)},
			map[string]int{}},
		{"G5 only on cut-off nodes", []Event{
			{Kind: KindFault, Fault: "isolate", Nodes: []string{"c"}, Start: 0, End: 1000 * ms},
			w("a", "k", 2, 10*ms, 11*ms, 12*ms, false, ""), rd("b", "k", 1, 200*ms, 201*ms)},
			map[string]int{}},
		{"G4 convergence failure", []Event{
			{Kind: KindConverge, Fault: "loss", Start: 0, End: 5 * ms, Err: "n1 untrusted"}},
			map[string]int{G4: 1}},
		{"G4 convergence", []Event{{Kind: KindConverge, Fault: "loss", Start: 0, End: 5 * ms}},
			map[string]int{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := Check(&History{Params: p, Events: tt.events})
			if !reflect.DeepEqual(r.Violations, tt.want) {
				t.Errorf("violations = %v, want %v; details %+v", r.Violations, tt.want, r.Details)
			}
			if r.Total() > 0 && len(r.Details) == 0 {
				t.Error("violations without details")
			}
		})
	}
}

// TestCheckG9 covers the log-fed freshness check: writes go to the source
// directly (no node), and a read anywhere may return a version superseded
// for at most MaxStaleness, counted from the superseding write's return.
func TestCheckG9(t *testing.T) {
	p := Params{MaxStaleness: 100 * time.Duration(ms), LogFed: true}
	tests := []struct {
		name   string
		events []Event
		want   map[string]int
	}{
		{"superseded beyond the bound", []Event{
			w("", "k", 2, 10*ms, 10*ms, 12*ms, false, ""), rd("b", "k", 1, 113*ms, 114*ms)},
			map[string]int{G9: 1}},
		{"counted from the write's return, not its start", []Event{
			w("", "k", 2, 10*ms, 10*ms, 12*ms, false, ""), rd("b", "k", 1, 111*ms, 114*ms)},
			map[string]int{}},
		{"a newer version's earlier return supersedes", []Event{
			w("", "k", 2, 10*ms, 10*ms, 90*ms, false, ""), w("", "k", 3, 11*ms, 11*ms, 12*ms, false, ""),
			rd("b", "k", 1, 113*ms, 114*ms)},
			map[string]int{G9: 1}},
		{"the version returned is current enough", []Event{
			w("", "k", 2, 10*ms, 10*ms, 12*ms, false, ""), w("", "k", 3, 150*ms, 150*ms, 151*ms, false, ""),
			rd("b", "k", 2, 200*ms, 201*ms)},
			map[string]int{}},
		{"a read below an earlier read on the node is no G1", []Event{
			rd("b", "k", 3, 1*ms, 2*ms), rd("b", "k", 2, 3*ms, 4*ms)},
			map[string]int{}},
		{"a failed write supersedes nothing", []Event{
			w("", "k", 0, 10*ms, 10*ms, 12*ms, false, "conn reset"), rd("b", "k", 1, 500*ms, 501*ms)},
			map[string]int{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := Check(&History{Params: p, Events: tt.events})
			if !reflect.DeepEqual(r.Violations, tt.want) {
				t.Errorf("violations = %v, want %v; details %+v", r.Violations, tt.want, r.Details)
			}
		})
	}
	// Without LogFed the same history breaks nothing: G9 is for log-fed groups.
	np := p
	np.LogFed = false
	if r := Check(&History{Params: np, Events: tests[0].events}); r.Total() != 0 {
		t.Errorf("G9 checked on a group that is not log-fed: %v", r.Violations)
	}
}

// TestCheckByFault attributes each violation to the fault (or the
// convergence after it) during which its read started.
func TestCheckByFault(t *testing.T) {
	h := &History{Params: Params{MaxStaleness: 100 * time.Duration(ms)}, Events: []Event{
		{Kind: KindFault, Fault: "kill", Start: 10 * ms, End: 20 * ms},
		{Kind: KindConverge, Fault: "kill", Start: 20 * ms, End: 30 * ms},
		{Kind: KindFault, Fault: "stop", Start: 40 * ms, End: 50 * ms},
		{Kind: KindConverge, Fault: "stop", Start: 50 * ms, End: 60 * ms, Err: "n1 untrusted"},
		w("a", "k", 2, 0, 1*ms, 2*ms, true, ""),
		rd("b", "k", 1, 5*ms, 6*ms),   // healthy
		rd("c", "k", 1, 15*ms, 16*ms), // during kill
		rd("d", "k", 1, 25*ms, 26*ms), // during kill's convergence
		rd("e", "k", 1, 45*ms, 46*ms), // during stop
		{Kind: KindFault, Fault: "long", Start: 70 * ms, End: 200 * ms},
		{Kind: KindFault, Fault: "rolling", Start: 80 * ms, End: 90 * ms},
		rd("f", "k", 1, 85*ms, 86*ms), // during both: the latest
	}}
	r := Check(h)
	want := map[string]map[string]int{
		"healthy": {G7: 1, G1: 1},
		"kill":    {G7: 2, G1: 2},
		"stop":    {G7: 1, G1: 1, G4: 1},
		"rolling": {G7: 1, G1: 1},
	}
	if !reflect.DeepEqual(r.ByFault, want) {
		t.Errorf("by fault = %v, want %v", r.ByFault, want)
	}
}

func TestCheckStalenessAndLoads(t *testing.T) {
	h := &History{Params: Params{MaxStaleness: 50 * time.Duration(ms)}, Events: []Event{
		w("a", "k", 1, 0, 0, 1*ms, false, ""),
		w("a", "k", 2, 10*ms, 11*ms, 12*ms, false, ""),
		rd("b", "k", 2, 20*ms, 21*ms), // current
		rd("b", "k", 1, 5*ms, 6*ms),   // current at its start
		rd("c", "k", 1, 30*ms, 31*ms), // 20ms stale
		rd("d", "k", 1, 70*ms, 71*ms), // 60ms stale: beyond the bound
		{Kind: KindLoad, Node: "a", Key: "k", Version: 1},
		{Kind: KindLoad, Node: "b", Key: "k", Version: 1},
		{Kind: KindLoad, Node: "b", Key: "k", Version: 2},
		{Kind: KindPropagation, Node: "b", End: 3 * ms},
	}}
	r := Check(h)
	if r.StaleReads != 2 || r.BeyondBound != 1 || r.Staleness.Max != 60*time.Millisecond || r.Staleness.N != 4 {
		t.Errorf("staleness: %d stale, %d beyond, %+v", r.StaleReads, r.BeyondBound, r.Staleness)
	}
	if want := (Loads{Calls: 3, Versions: 2, Duplicates: 1, MaxPerValue: 2}); r.Loads != want {
		t.Errorf("loads = %+v, want %+v", r.Loads, want)
	}
	if r.Propagation.Max != 3*time.Millisecond || r.Ops != 6 || r.Nines <= 0 {
		t.Errorf("propagation %+v, ops %d, nines %v", r.Propagation, r.Ops, r.Nines)
	}
}

func TestHistoryRoundTrip(t *testing.T) {
	rec := NewRecorder()
	rec.Write("a", "k", 2, 1, 2, 3, true, nil)
	rec.Read("b", "k", 4, 5, 1, nil)
	rec.Add(Event{Kind: KindFault, Fault: "split", Nodes: []string{"a", "b"}, Start: 1, End: 9})
	h := rec.History(Params{Seed: 7, MaxStaleness: time.Second})
	path := filepath.Join(t.TempDir(), "h.jsonl")
	if err := h.Save(path); err != nil {
		t.Fatal(err)
	}
	got, err := LoadHistory(path)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, h) {
		t.Errorf("round trip:\n got %+v\nwant %+v", got, h)
	}
	if a, b := Check(got), Check(h); !reflect.DeepEqual(a, b) || a.Violations[G7] != 1 {
		t.Errorf("re-check differs or misses the G7 violation: %+v vs %+v", a, b)
	}
}

func FuzzDecodeHistory(f *testing.F) {
	var buf bytes.Buffer
	h := &History{Params: Params{Seed: 1}, Events: []Event{w("a", "k", 2, 1, 2, 3, true, ""), rd("b", "k", 1, 4, 5)}}
	if err := h.Encode(&buf); err != nil {
		f.Fatal(err)
	}
	f.Add(buf.Bytes())
	f.Add([]byte("{}\n{\"k\":9}\n"))
	f.Add([]byte(""))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := DecodeHistory(bytes.NewReader(b))
		if err != nil {
			return
		}
		Check(h) // must not panic
		var out bytes.Buffer
		if err := h.Encode(&out); err != nil {
			t.Fatal(err)
		}
		h2, err := DecodeHistory(&out)
		if err != nil {
			t.Fatalf("re-decoding an encoded history: %v", err)
		}
		if len(h2.Events) != len(h.Events) {
			t.Fatalf("%d events after a round trip, want %d", len(h2.Events), len(h.Events))
		}
	})
}

func BenchmarkCheck(b *testing.B) {
	const n = 100_000
	h := &History{Params: Params{MaxStaleness: time.Second}}
	for i := range n {
		k := "k" + string(rune('a'+i%16))
		if i%20 == 0 {
			h.Events = append(h.Events, w("a", k, uint64(i), int64(i)*ms, int64(i)*ms, int64(i+1)*ms, i%80 == 0, ""))
			continue
		}
		h.Events = append(h.Events, rd("b", k, uint64(i/20*20), int64(i)*ms, int64(i+1)*ms))
	}
	b.ReportAllocs()
	for b.Loop() {
		Check(h)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/n, "ns/event")
}
