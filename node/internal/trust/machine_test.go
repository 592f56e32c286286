package trust

import (
	"strings"
	"testing"
	"time"
)

const ms = int64(time.Millisecond)

var (
	fresh = Verdict{OK: true, Why: "fresh"}
	cut   = Verdict{OK: false, Why: "no peer heard within MaxStaleness"}
)

func newMachine(t *testing.T, now int64) *Machine {
	t.Helper()
	m, err := New(100*time.Millisecond, now)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// spoken is a Silent func for peers that last spoke at the given times.
func spoken(at ...int64) func(int64) int {
	return func(since int64) int {
		k := 0
		for _, a := range at {
			if a < since {
				k++
			}
		}
		return k
	}
}

func TestNewRejectsBadLease(t *testing.T) {
	for _, l := range []time.Duration{0, -time.Second} {
		if _, err := New(l, 0); err == nil {
			t.Errorf("New(%v) accepted", l)
		}
	}
}

func TestEarnsTrustOnlyAfterEveryPeerSpoke(t *testing.T) {
	m := newMachine(t, 10*ms)
	// A good verdict, but one peer last spoke before the join.
	a := m.Step(Input{Now: 20 * ms, Health: fresh, Silent: spoken(5*ms, 15*ms)})
	if m.Trusted() || a.Purge || a.Earned != "" {
		t.Fatalf("trusted with a peer silent since before the join: %+v", a)
	}
	if !strings.Contains(a.Why, "1 live peer") {
		t.Errorf("Why = %q, want the silent peer counted", a.Why)
	}
	a = m.Step(Input{Now: 30 * ms, Health: fresh, Silent: spoken(25*ms, 15*ms)})
	if !m.Trusted() || !a.Purge || a.Earned != "fresh" {
		t.Fatalf("not trusted once every peer spoke: %+v", a)
	}
	if got := m.Until(); got != 130*ms {
		t.Errorf("Until = %d, want now + lease = %d", got, 130*ms)
	}
}

func TestBadVerdictLosesTrustAndRestartsTheEarning(t *testing.T) {
	m := newMachine(t, 0)
	m.Step(Input{Now: 10 * ms, Health: fresh})
	a := m.Step(Input{Now: 20 * ms, Health: cut})
	if m.Trusted() || m.Until() != 0 || a.Lost != cut.Why {
		t.Fatalf("a bad verdict kept trust: %+v until %d", a, m.Until())
	}
	if a.Resync != 0 {
		t.Errorf("a bad verdict asked for a resync: %+v", a)
	}
	// The peer spoke at 15ms: before trust was lost, so it does not count.
	if m.Step(Input{Now: 30 * ms, Health: fresh, Silent: spoken(15 * ms)}); m.Trusted() {
		t.Fatal("trust earned back on a peer heard before it was lost")
	}
	if a := m.Step(Input{Now: 40 * ms, Health: fresh, Silent: spoken(35 * ms)}); !m.Trusted() || !a.Purge {
		t.Fatalf("trust not earned back: %+v", a)
	}
}

func TestGoodVerdictsRenewWithoutPurging(t *testing.T) {
	m := newMachine(t, 0)
	m.Step(Input{Now: ms, Health: fresh})
	for now := 10 * ms; now < 1000*ms; now += 50 * ms {
		a := m.Step(Input{Now: now, Health: fresh, Silent: spoken(0)})
		if a.Purge || a.Lost != "" || a.Resync != 0 || m.Until() != now+100*ms {
			t.Fatalf("step at %d: %+v until %d", now, a, m.Until())
		}
	}
}

func TestStallPastLeaseNeedsResyncThenPeers(t *testing.T) {
	m := newMachine(t, 0)
	m.Step(Input{Now: ms, Health: fresh})
	// Woken 300ms later, past the lease ending at 101ms; the verdict looks good.
	a := m.Step(Input{Now: 301 * ms, Health: fresh})
	if m.Trusted() || !strings.Contains(a.Lost, "stalled") || a.Resync == 0 {
		t.Fatalf("a stall kept trust or asked no resync: %+v", a)
	}
	gen := a.Resync
	// Until the resync finishes, good verdicts earn nothing and it is asked again.
	a = m.Step(Input{Now: 310 * ms, Health: fresh})
	if m.Trusted() || a.Resync != gen {
		t.Fatalf("trusted before the resync, or stopped asking: %+v", a)
	}
	if m.Resynced(gen+1, 315*ms) {
		t.Error("a resync nobody asked for counted")
	}
	if !m.Resynced(gen, 320*ms) {
		t.Fatal("the resync asked for did not count")
	}
	// A peer heard at 318ms spoke before the resync ended: not enough.
	if a = m.Step(Input{Now: 330 * ms, Health: fresh, Silent: spoken(318 * ms)}); m.Trusted() || a.Resync != 0 {
		t.Fatalf("trusted on a peer heard before the resync ended: %+v", a)
	}
	if a = m.Step(Input{Now: 340 * ms, Health: fresh, Silent: spoken(325 * ms)}); !m.Trusted() || !a.Purge {
		t.Fatalf("not trusted after resync and peers: %+v", a)
	}
}

// A resync asked for before a second stall must not count for it: the
// exchange's answers predate what the second stall missed.
func TestResyncFromAnEarlierStallDoesNotCount(t *testing.T) {
	m := newMachine(t, 0)
	m.Step(Input{Now: ms, Health: fresh})
	first := m.Step(Input{Now: 300 * ms, Health: fresh}).Resync
	m.Resynced(first, 310*ms)
	m.Step(Input{Now: 320 * ms, Health: fresh, Silent: spoken(315 * ms)})
	if !m.Trusted() {
		t.Fatal("setup: not trusted after the first resync")
	}
	second := m.Step(Input{Now: 900 * ms, Health: fresh}).Resync
	if second == first || second == 0 {
		t.Fatalf("second stall asked resync %d, first was %d", second, first)
	}
	if m.Resynced(first, 910*ms) {
		t.Fatal("the first stall's resync counted for the second")
	}
	if m.Step(Input{Now: 920 * ms, Health: fresh, Silent: spoken(915 * ms)}); m.Trusted() {
		t.Fatal("trusted after the second stall without its own resync")
	}
}

func TestStallIsMeasuredAgainstTheLease(t *testing.T) {
	m := newMachine(t, 0)
	m.Step(Input{Now: 0, Health: fresh})
	// A step late by less than the lease is no stall.
	if a := m.Step(Input{Now: 100 * ms, Health: fresh}); a.Lost != "" || !m.Trusted() {
		t.Fatalf("a step at the lease's last instant counted as a stall: %+v", a)
	}
	if a := m.Step(Input{Now: 200*ms + 1, Health: fresh}); a.Lost == "" {
		t.Fatal("a step 1ns past the lease was not a stall")
	}
}
