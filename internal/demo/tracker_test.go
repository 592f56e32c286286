package demo

import (
	"slices"
	"testing"
	"time"
)

func TestTrackerStale(t *testing.T) {
	base := time.Now()
	at := func(ms int) time.Time { return base.Add(time.Duration(ms) * time.Millisecond) }
	type inval struct {
		ms      int
		version uint64
	}
	tests := []struct {
		name    string
		invals  []inval // in the order writers record them
		startMs int
		version uint64
		want    bool
	}{
		{name: "no invalidation", startMs: 10, version: 1, want: false},
		{name: "read older, started after", invals: []inval{{5, 2}}, startMs: 10, version: 1, want: true},
		{name: "read current, started after", invals: []inval{{5, 2}}, startMs: 10, version: 2, want: false},
		{name: "read newer, started after", invals: []inval{{5, 2}}, startMs: 10, version: 3, want: false},
		{name: "read older, started before", invals: []inval{{5, 2}}, startMs: 4, version: 1, want: false},
		{name: "read older, started at the same instant", invals: []inval{{5, 2}}, startMs: 5, version: 1, want: false},
		// A later, newer invalidation does not hide the earlier one a read
		// started after: the read of v1 at 7 is stale against v2 (returned at 5).
		{name: "stale against an earlier one, newer came later", invals: []inval{{5, 2}, {9, 3}}, startMs: 7, version: 1, want: true},
		{name: "current at start, newer came later", invals: []inval{{5, 2}, {9, 3}}, startMs: 7, version: 2, want: false},
		// An older version's invalidation returning last does not lower the bar.
		{name: "older returned last", invals: []inval{{5, 3}, {8, 2}}, startMs: 9, version: 2, want: true},
		// Recorded out of time order: the history stays sorted.
		{name: "recorded out of order", invals: []inval{{9, 3}, {5, 2}}, startMs: 7, version: 1, want: true},
		{name: "recorded out of order, before both", invals: []inval{{9, 3}, {5, 2}}, startMs: 4, version: 1, want: false},
		{name: "recorded out of order, max carried", invals: []inval{{5, 4}, {9, 3}, {7, 2}}, startMs: 8, version: 3, want: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := newTracker(2, base)
			for _, iv := range tt.invals {
				tr.invalidated(1, iv.version, at(iv.ms))
			}
			if got := tr.stale(1, 0, at(tt.startMs), tt.version); got != tt.want {
				t.Errorf("stale(start %dms, v%d) after %v = %v, want %v", tt.startMs, tt.version, tt.invals, got, tt.want)
			}
			if tr.stale(0, 0, at(100), 0) {
				t.Error("key 0, never invalidated, judged stale")
			}
		})
	}
}

// TestTrackerLateCheck covers the window between a writer's time stamp and
// its record: reads judged in it are judged again when the record lands.
func TestTrackerLateCheck(t *testing.T) {
	base := time.Now()
	at := func(ms int) time.Time { return base.Add(time.Duration(ms) * time.Millisecond) }
	tr := newTracker(1, base)
	tr.invalidated(0, 2, at(1))
	// Judged before the record of v3 (returned at 5) lands.
	reads := []struct {
		ms, instance int
		version      uint64
		wantNow      bool
	}{
		{ms: 4, instance: 0, version: 2, wantNow: false}, // started before v3 returned: fresh
		{ms: 6, instance: 1, version: 2, wantNow: false}, // after: stale, found late
		{ms: 7, instance: 2, version: 3, wantNow: false}, // current
		{ms: 8, instance: 2, version: 1, wantNow: true},  // stale already (v2): not counted twice
	}
	for _, r := range reads {
		if got := tr.stale(0, r.instance, at(r.ms), r.version); got != r.wantNow {
			t.Errorf("stale(%dms, v%d) = %v, want %v", r.ms, r.version, got, r.wantNow)
		}
	}
	late, gaps := tr.invalidated(0, 3, at(5))
	if !slices.Equal(late, []int{1}) || gaps != 0 {
		t.Errorf("late check = %v, gaps %d; want [1], 0", late, gaps)
	}
	if late, _ := tr.invalidated(0, 3, at(5)); len(late) != 0 {
		t.Errorf("second late check found %v again", late)
	}
	// A ring full of reads after the record's time: some may be lost.
	for i := range recentReads {
		tr.stale(0, 0, at(100+i), 9)
	}
	if _, gaps := tr.invalidated(0, 4, at(50)); gaps != 1 {
		t.Errorf("gaps = %d with a ring full of later reads, want 1", gaps)
	}
}

func BenchmarkTrackerStale(b *testing.B) {
	base := time.Now()
	tr := newTracker(1, base)
	for i := range 10000 {
		tr.invalidated(0, uint64(i+1), base.Add(time.Duration(i)*time.Microsecond))
	}
	start := base.Add(5 * time.Millisecond)
	b.ReportAllocs()
	for b.Loop() {
		tr.stale(0, 0, start, 5000)
	}
}
