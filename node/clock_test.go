package node

import (
	"testing"
	"time"
)

// TestHLCAcrossClockSteps: stamps keep increasing when the wall clock steps
// back (an hour, NTP correcting a fast clock), stands still, or steps
// forward and back; and a stamp observed from a node whose clock runs ahead
// is passed. Catches: stamps taken from the wall clock as is (a write after a
// step back would get a version below the floor its previous write set, and
// be refused everywhere).
func TestHLCAcrossClockSteps(t *testing.T) {
	t0 := uint64(time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC).UnixNano())
	hour := uint64(time.Hour)
	steps := []struct {
		name string
		wall uint64
	}{
		{"start", t0},
		{"1 ns later", t0 + 1},
		{"an hour back", t0 - hour},
		{"standing still", t0 - hour},
		{"a day forward", t0 + 24*hour},
		{"back to normal", t0 + 2},
	}
	var c hlc
	var wall uint64
	c.wall = func() uint64 { return wall }
	var last uint64
	for _, s := range steps {
		wall = s.wall
		got := c.now()
		if got <= last {
			t.Fatalf("%s: stamp %d not above the previous %d", s.name, got, last)
		}
		last = got
	}
	ahead := last + hour // a peer an hour ahead
	c.observe(ahead)
	if got := c.now(); got <= ahead {
		t.Fatalf("stamp %d after observing %d: not past it", got, ahead)
	}
}
