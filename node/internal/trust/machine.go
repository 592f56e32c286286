package trust

import (
	"errors"
	"fmt"
	"time"
)

// Verdict is the cluster's health as the caller judged it for one step:
// whether the node heard enough of the cluster, recently enough, to vouch
// for its cache, and why.
type Verdict struct {
	OK  bool
	Why string
}

// Input is what one step is told. Times are nanoseconds on the caller's
// monotonic clock (since some fixed epoch), never wall time.
type Input struct {
	Now    int64
	Health Verdict
	// Silent returns how many live peers have not spoken to the node since
	// the given time; Step calls it only while earning trust. nil = none.
	Silent func(since int64) int
}

// Actions is what the caller must do after a step, in this order: purge
// every group when Purge, then publish Trusted and Until to readers (Until
// last, so a reader that sees the new lease sees the purge).
type Actions struct {
	Purge bool // trust was earned: drop every cached value before serving
	// Resync, when nonzero, asks for a state exchange with every live peer,
	// numbered so: start one unless one is running, and report its end with
	// Resynced. Asked again on every step until one succeeds.
	Resync uint64
	Earned string // why trust was earned ("" = it was not); log it
	Lost   string // why trust was lost ("" = it was not); log it, count it
	Why    string // the step's verdict, for status pages
}

// Machine is the trust state. The zero value is not usable: use New.
// It is not safe for concurrent use; its caller serialises Step and Resynced.
type Machine struct {
	lease     int64
	trusted   bool
	until     int64  // lease end while trusted; 0 otherwise
	earnSince int64  // peers must have spoken since then to earn trust
	resync    uint64 // nonzero: the resync that must finish before trust is earned
	gen       uint64 // resyncs asked for so far
}

// New returns an untrusted machine for a node that joined at now: its peers
// must speak to it after that before it trusts its cache. lease is how long
// one good verdict lets cached values be served.
func New(lease time.Duration, now int64) (*Machine, error) {
	if lease <= 0 {
		return nil, errors.New("trust: lease must be positive")
	}
	return &Machine{lease: int64(lease), earnSince: now}, nil
}

// Trusted reports the last step's verdict.
func (m *Machine) Trusted() bool { return m.trusted }

// Until is the end of the lease (0 when not trusted): cached values may be
// served while the caller's clock reads less.
func (m *Machine) Until() int64 { return m.until }

// Step judges the node at in.Now.
func (m *Machine) Step(in Input) Actions {
	var a Actions
	stalled := m.trusted && in.Now > m.until
	if brokenNoFreshness {
		stalled = false // the broken build: a stall keeps its verdict
	}
	if stalled {
		a.Lost = "stalled past the trust lease (frozen, paused or starved)"
		m.lose()
		m.gen++
		m.resync = m.gen
	}
	a.Resync = m.resync
	ok, why := in.Health.OK, in.Health.Why
	if ok && !m.trusted {
		if m.resync != 0 {
			ok, why = false, "exchanging state with every live peer after a stall"
		} else if k := silent(in, m.earnSince); k > 0 {
			ok, why = false, fmt.Sprintf("%d live peer(s) have not spoken to this node yet (they may still count it as dead)", k)
		}
	}
	switch {
	case ok && !m.trusted:
		m.trusted = true
		a.Purge, a.Earned = true, why
	case !ok && m.trusted:
		a.Lost = why
		m.lose()
		m.earnSince = in.Now
	}
	if ok {
		m.until = in.Now + m.lease
	}
	a.Why = why
	return a
}

// Resynced reports that resync number gen finished at now with every live
// peer answering. Only the resync the machine is waiting for counts: one
// that began before a later stall says nothing about what that stall missed.
// It reports whether it counted.
func (m *Machine) Resynced(gen uint64, now int64) bool {
	if gen == 0 || gen != m.resync {
		return false
	}
	m.resync = 0
	m.earnSince = now
	return true
}

func (m *Machine) lose() {
	m.trusted = false
	m.until = 0
}

func silent(in Input, since int64) int {
	if in.Silent == nil {
		return 0
	}
	return in.Silent(since)
}
