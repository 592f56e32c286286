package check

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"time"
)

// Guarantee names used in [Report.Violations].
const (
	G1 = "G1" // no resurrection: a read on a node below a version the node had applied or returned
	G2 = "G2" // read-your-writes on the writer
	G4 = "G4" // repair: the cluster converged on the source after the faults healed
	G5 = "G5" // bounded staleness on a cut-off node
	G7 = "G7" // after an AckAll invalidation returned, no node returns an older version (G8: no stale set survives it)
	G9 = "G9" // log-fed freshness: no node serves a value the database superseded more than MaxStaleness before the read
)

// maxDetails bounds the violations a report describes.
const maxDetails = 10

// Violation is one read (or convergence) that broke a guarantee.
type Violation struct {
	Guarantee string `json:"guarantee"`
	Node      string `json:"node,omitempty"`
	Key       string `json:"key,omitempty"`
	Got       uint64 `json:"got,omitempty"`  // the version the read returned
	Want      uint64 `json:"want,omitempty"` // the version it had to reach
	ReadStart int64  `json:"read_start_ns,omitempty"`
	ReadEnd   int64  `json:"read_end_ns,omitempty"`
	Why       string `json:"why"`
}

// Dist summarises durations.
type Dist struct {
	N   int           `json:"n"`
	P50 time.Duration `json:"p50"`
	P99 time.Duration `json:"p99"`
	Max time.Duration `json:"max"`
}

func distOf(ds []time.Duration) Dist {
	if len(ds) == 0 {
		return Dist{}
	}
	slices.Sort(ds)
	at := func(q float64) time.Duration { return ds[min(len(ds)-1, int(q*float64(len(ds))))] }
	return Dist{N: len(ds), P50: at(0.50), P99: at(0.99), Max: ds[len(ds)-1]}
}

// Converge is how long the cluster took to converge after a fault healed.
type Converge struct {
	Fault string        `json:"fault"`
	Took  time.Duration `json:"took"`
	Err   string        `json:"err,omitempty"`
}

// Loads counts loader calls.
type Loads struct {
	Calls       int `json:"calls"`
	Versions    int `json:"versions"`      // distinct (key, version) loaded
	Duplicates  int `json:"duplicates"`    // Calls - Versions: loads of a (key, version) loaded before
	MaxPerValue int `json:"max_per_value"` // most loads of one (key, version)
}

// Report is the checker's verdict on a history. It serialises to JSON.
type Report struct {
	Params       Params        `json:"params"`
	Span         time.Duration `json:"span"`
	Ops          int           `json:"ops"`
	Reads        int           `json:"reads"`
	ReadErrors   int           `json:"read_errors"`
	Writes       int           `json:"writes"`
	AckAllWrites int           `json:"ackall_writes"`
	WriteErrors  int           `json:"write_errors"`
	TrustChanges int           `json:"trust_changes"`
	// Violations counts the reads breaking each guarantee (a read can break
	// several); a guarantee with none is absent.
	Violations map[string]int `json:"violations"`
	// ByFault counts the same violations by the fault, or the convergence
	// after it, during which the read started (by name; "healthy" outside
	// every window, the latest-starting one when several hold the read).
	ByFault map[string]map[string]int `json:"by_fault,omitempty"`
	Details []Violation               `json:"details,omitempty"` // the first few, in time order per key
	// Staleness is, per successful read, how long before it started a newer
	// version than the one it returned was committed (0 when it was current).
	Staleness  Dist `json:"staleness"`
	StaleReads int  `json:"stale_reads"` // reads with Staleness > 0
	// BeyondBound counts reads staler than MaxStaleness; Nines is
	// -log10(BeyondBound/Reads), the way Meta reports cache consistency
	// (+Inf written as 0 BeyondBound).
	BeyondBound int     `json:"beyond_bound"`
	Nines       float64 `json:"nines"`
	// HealthyReads and HealthyBeyondBound count the successful reads that
	// started outside every fault and its convergence window, and of them
	// those staler than MaxStaleness.
	HealthyReads       int `json:"healthy_reads"`
	HealthyBeyondBound int `json:"healthy_beyond_bound"`
	// ReadRegressions counts, in a log-fed history (Params.LogFed), the
	// reads below a version an earlier read on the same node returned, and
	// above every floor the node had applied: not G1 violations there. A
	// node that does not serve its cache (its feed progress ran out, or it
	// just started) reads the database's newest version, ahead of what the
	// feed has applied; once it serves again it serves what the feed
	// applied, which may be older (by at most MaxStaleness: G9). DESIGN.md's
	// G1 is about applied invalidations, which this does not break; the
	// checker's "earlier read returned" floor is stricter and does not hold
	// for log-fed groups today (seen in 2 of 5 TestProcessCampaignPostgres
	// runs, on a killed holder's next incarnation).
	ReadRegressions int `json:"read_regressions,omitempty"`
	// PropagationBound is the tighter bound Healthy and Faulty count reads
	// against besides MaxStaleness ([PropagationBound]).
	PropagationBound time.Duration `json:"propagation_bound"`
	// Healthy and Faulty are the nines of the reads that started, and of
	// the writes whose window (commit to commit+1 s or +10 s) lay, outside
	// every fault and convergence window (Healthy) or not (Faulty).
	Healthy     PhaseNines `json:"healthy"`
	Faulty      PhaseNines `json:"faulty"`
	Propagation Dist       `json:"propagation"`
	Converge    []Converge `json:"converge,omitempty"`
	Loads       Loads      `json:"loads"`

	windows  []window // fault and convergence windows, by start
	lastRead int64    // the latest start of a successful read (any key)
}

// PropagationBound is the bound within which a write's invalidation should
// have reached every node on a healthy cluster: a read is beyond it when a
// version newer than the one it returned had committed more than this long
// before the read started.
const PropagationBound = 100 * time.Millisecond

// WriteBounds are the per-write figures' delays, Meta's: a write counts
// against a delay when some node served a version older than it that long
// (or longer) after it committed.
var WriteBounds = [2]time.Duration{time.Second, 10 * time.Second}

// Share is N reads or writes of which Beyond were beyond a bound, and its
// nines: -log10(Beyond/N). With Beyond 0, Nines is log10(N), the most N
// can show, and AtLeast says so.
type Share struct {
	N       int     `json:"n"`
	Beyond  int     `json:"beyond"`
	Nines   float64 `json:"nines"`
	AtLeast bool    `json:"at_least,omitempty"`
}

func (s *Share) add(beyond bool) {
	s.N++
	if beyond {
		s.Beyond++
	}
}

func (s *Share) finish() {
	switch {
	case s.N == 0:
		s.Nines, s.AtLeast = 0, false
	case s.Beyond == 0:
		s.Nines, s.AtLeast = math.Log10(float64(s.N)), true
	default:
		s.Nines, s.AtLeast = math.Log10(float64(s.N)/float64(s.Beyond)), false // not -log10: -0 when all are beyond
	}
}

func (s Share) String() string {
	if s.N == 0 {
		return "0 of 0"
	}
	ge := ""
	if s.AtLeast {
		ge = ">="
	}
	return fmt.Sprintf("%d of %d beyond (%s%.2f nines)", s.Beyond, s.N, ge, s.Nines)
}

// PhaseNines are the nines of a phase (healthy or faulty), per read and per
// write.
type PhaseNines struct {
	// Propagation and Bound are per successful read: beyond when a newer
	// version than the one returned had committed more than
	// PropagationBound (Bound: MaxStaleness) before the read started.
	Propagation Share `json:"reads_propagation"`
	Bound       Share `json:"reads_max_staleness"`
	// Write1s and Write10s are per committed write, Meta's unit: the share
	// of writes whose invalidation reached every node within the delay.
	// A write is beyond when some node served a version older than it in
	// a read that started more than 1 s (10 s) after the write committed.
	// Only writes committed at least that long before the history's last
	// read are counted; a write is in the healthy phase when no fault or
	// convergence window overlaps commit..commit+delay.
	Write1s  Share `json:"writes_1s"`
	Write10s Share `json:"writes_10s"`
}

func (p *PhaseNines) finish() {
	p.Propagation.finish()
	p.Bound.finish()
	p.Write1s.finish()
	p.Write10s.finish()
}

func (p PhaseNines) String() string {
	return fmt.Sprintf("reads: %s beyond %v, %s beyond MaxStaleness; writes a node served superseded: at +1s %s, at +10s %s",
		p.Propagation, PropagationBound, p.Bound, p.Write1s, p.Write10s)
}

// Summary is a one-line account of the nines, healthy and faulty.
func (r *Report) Summary() string {
	return fmt.Sprintf("healthy %s | faulty %s", r.Healthy, r.Faulty)
}

// phase returns the nines of the phase of a read starting at t.
func (r *Report) phase(troubled [][2]int64, t int64) *PhaseNines {
	if cutIn(troubled, t) {
		return &r.Faulty
	}
	return &r.Healthy
}

// window is a fault or a convergence after it, for [Report.ByFault].
type window struct {
	start, end int64
	fault      string
}

// faultAt names the latest-starting window holding t, or "healthy".
func (r *Report) faultAt(t int64) string {
	f := "healthy"
	for _, w := range r.windows {
		if w.start > t {
			break
		}
		if t <= w.end {
			f = w.fault
		}
	}
	return f
}

// Total returns the number of violations of every guarantee.
func (r *Report) Total() int {
	n := 0
	for _, c := range r.Violations {
		n += c
	}
	return n
}

func (r *Report) violate(v Violation) { r.violateIn(v, r.faultAt(v.ReadStart)) }

// violateIn records v as happening during fault f.
func (r *Report) violateIn(v Violation, f string) {
	r.Violations[v.Guarantee]++
	if r.ByFault == nil {
		r.ByFault = map[string]map[string]int{}
	}
	if r.ByFault[f] == nil {
		r.ByFault[f] = map[string]int{}
	}
	r.ByFault[f][v.Guarantee]++
	if len(r.Details) < maxDetails {
		r.Details = append(r.Details, v)
	}
}

// point is one instant of the per-key sweep.
type point struct {
	at   int64
	rank int8 // at equal times: checks (0) before the floors they would see (1)
	ev   *Event
}

// Check verifies h. Its cost is O(n log n) for the sort by key and time, then
// linear sweeps: no search over interleavings.
func Check(h *History) Report {
	r := Report{Params: h.Params, Violations: map[string]int{}, PropagationBound: PropagationBound}
	byKey := map[string][]point{}
	commits := map[string][]*Event{}     // per key, writes (by version, for staleness and G5)
	cutoff := map[string][][2]int64{}    // per node, intervals it was cut off
	var troubled [][2]int64              // faults and convergence windows
	loads := map[string]map[uint64]int{} // per key, calls per version
	var props []time.Duration
	for i := range h.Events {
		if e := &h.Events[i]; e.Kind == KindFault || e.Kind == KindConverge {
			r.windows = append(r.windows, window{e.Start, e.End, e.Fault})
		}
	}
	slices.SortFunc(r.windows, func(a, b window) int { return cmp.Compare(a.start, b.start) })
	for i := range h.Events {
		e := &h.Events[i]
		r.Span = max(r.Span, time.Duration(max(e.Start, e.End)))
		switch e.Kind {
		case KindRead:
			r.Ops++
			r.Reads++
			if e.Err != "" {
				r.ReadErrors++
				continue
			}
			byKey[e.Key] = append(byKey[e.Key], point{e.Start, 0, e}, point{e.End, 1, e})
			r.lastRead = max(r.lastRead, e.Start)
		case KindWrite:
			r.Ops++
			r.Writes++
			if e.AckAll {
				r.AckAllWrites++
			}
			if e.Err != "" {
				r.WriteErrors++
			}
			byKey[e.Key] = append(byKey[e.Key], point{e.End, 1, e})
			commits[e.Key] = append(commits[e.Key], e)
		case KindTrust:
			r.TrustChanges++
		case KindFault:
			troubled = append(troubled, [2]int64{e.Start, e.End})
			for _, n := range e.Nodes {
				cutoff[n] = append(cutoff[n], [2]int64{e.Start, e.End})
			}
		case KindLoad:
			m := loads[e.Key]
			if m == nil {
				m = map[uint64]int{}
				loads[e.Key] = m
			}
			m[e.Version]++
			r.Loads.Calls++
		case KindConverge:
			troubled = append(troubled, [2]int64{e.Start, e.End})
			r.Converge = append(r.Converge, Converge{Fault: e.Fault, Took: time.Duration(e.End - e.Start), Err: e.Err})
			if e.Err != "" {
				r.violateIn(Violation{Guarantee: G4, Why: fmt.Sprintf("after %s healed: %s", e.Fault, e.Err)}, e.Fault)
			}
		case KindPropagation:
			props = append(props, time.Duration(e.End))
		}
	}
	for _, m := range loads {
		for _, n := range m {
			r.Loads.Versions++
			r.Loads.MaxPerValue = max(r.Loads.MaxPerValue, n)
		}
	}
	r.Loads.Duplicates = r.Loads.Calls - r.Loads.Versions
	r.Propagation = distOf(props)

	keys := make([]string, 0, len(byKey))
	for k := range byKey {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var staleness []time.Duration
	for _, k := range keys {
		cs := commits[k]
		slices.SortFunc(cs, func(a, b *Event) int { return cmp.Compare(a.Version, b.Version) })
		staleness = r.sweep(k, byKey[k], cs, cutoff, troubled, staleness)
	}
	r.Staleness = distOf(staleness)
	r.Healthy.finish()
	r.Faulty.finish()
	switch {
	case r.Reads-r.ReadErrors == 0:
	case r.BeyondBound == 0:
		r.Nines = math.Inf(1)
	default:
		r.Nines = -math.Log10(float64(r.BeyondBound) / float64(r.Reads-r.ReadErrors))
	}
	if math.IsInf(r.Nines, 1) {
		r.Nines = 0 // JSON has no +Inf: BeyondBound == 0 says it
	}
	return r
}

// floors is what one node must not go below for a key.
type floors struct {
	written  uint64 // highest version whose Invalidate returned on this node
	returned uint64 // highest version a read on this node returned
}

// sweep checks one key's points in time order and appends each read's staleness.
func (r *Report) sweep(key string, pts []point, commits []*Event, cutoff map[string][][2]int64, troubled [][2]int64, staleness []time.Duration) []time.Duration {
	slices.SortFunc(pts, func(a, b point) int {
		if c := cmp.Compare(a.at, b.at); c != 0 {
			return c
		}
		return cmp.Compare(a.rank, b.rank)
	})
	per := map[string]*floors{}
	get := func(n string) *floors {
		f := per[n]
		if f == nil {
			f = &floors{}
			per[n] = f
		}
		return f
	}
	var acked uint64 // highest version an AckAll invalidation returned without error
	bound := r.Params.MaxStaleness
	// G9's supersession times: firstDone[i] is the earliest return of a
	// successful write of a version >= commits[i].Version (a suffix
	// minimum: a later version's write may return before an earlier one's).
	var firstDone []int64
	if r.Params.LogFed && bound > 0 {
		firstDone = make([]int64, len(commits)+1)
		firstDone[len(commits)] = math.MaxInt64
		for j := len(commits) - 1; j >= 0; j-- {
			firstDone[j] = firstDone[j+1]
			if c := commits[j]; c.Err == "" && c.Version > 0 {
				firstDone[j] = min(firstDone[j], c.End)
			}
		}
	}
	for _, p := range pts {
		e := p.ev
		if p.rank == 1 { // a floor from now on
			switch e.Kind {
			case KindWrite:
				f := get(e.Node)
				f.written = max(f.written, e.Version)
				if e.AckAll && e.Err == "" {
					acked = max(acked, e.Version)
				}
			case KindRead:
				f := get(e.Node)
				f.returned = max(f.returned, e.Version)
			}
			continue
		}
		// A read starting now.
		f := get(e.Node)
		v := Violation{Node: e.Node, Key: key, Got: e.Version, ReadStart: e.Start, ReadEnd: e.End}
		if e.Version < f.written {
			v.Guarantee, v.Want, v.Why = G2, f.written, "read on the writer below the version its Invalidate had returned for"
			r.violate(v)
		}
		if e.Version < acked {
			v.Guarantee, v.Want, v.Why = G7, acked, "read below a version whose AckAll invalidation had returned"
			r.violate(v)
		}
		switch floor := max(f.written, acked, f.returned); {
		case e.Version >= floor:
		case f.returned > max(f.written, acked) && r.Params.LogFed:
			// Not a G1 violation for a log-fed group (see ReadRegressions).
			r.ReadRegressions++
		case f.returned > max(f.written, acked):
			v.Guarantee, v.Want, v.Why = G1, f.returned, "read below a version an earlier read on the node returned"
			r.violate(v)
		default:
			v.Guarantee, v.Want, v.Why = G1, floor, "read below a version the node had applied"
			r.violate(v)
		}
		// Staleness: the first version above the one returned.
		i, _ := slices.BinarySearchFunc(commits, e.Version+1, func(c *Event, v uint64) int { return cmp.Compare(c.Version, v) })
		var st time.Duration
		if i < len(commits) && commits[i].Commit < e.Start {
			st = time.Duration(e.Start - commits[i].Commit)
		}
		staleness = append(staleness, st)
		if st > 0 {
			r.StaleReads++
		}
		if bound > 0 && st > bound {
			r.BeyondBound++
		}
		ph := r.phase(troubled, e.Start)
		ph.Propagation.add(st > PropagationBound)
		ph.Bound.add(bound > 0 && st > bound)
		if ph == &r.Healthy {
			r.HealthyReads++
			if bound > 0 && st > bound {
				r.HealthyBeyondBound++
			}
		}
		// G9: on every node, nothing the source superseded more than
		// MaxStaleness before the read. A write's commit is taken as the
		// time its statement returned (End), which is after the commit: a
		// violation can be missed by the commit-to-return delay, never
		// reported falsely. No clock grace: the nodes and the recorder run
		// on one machine's clock (MaxClockSkew is for separate machines),
		// and the read's start is before the node looked at its progress.
		if firstDone != nil && i < len(commits) {
			if sup := firstDone[i]; sup != math.MaxInt64 && e.Start-sup > int64(bound) {
				v.Guarantee, v.Want = G9, commits[i].Version
				v.Why = fmt.Sprintf("log-fed read served a version the source superseded %v before the read (bound %v)",
					time.Duration(e.Start-sup), bound)
				r.violate(v)
			}
		}
		// G5: on a cut-off node, nothing superseded (committed and
		// invalidated) more than MaxStaleness+Slack before the read.
		if bound > 0 && i < len(commits) && cutIn(cutoff[e.Node], e.Start) {
			// The earliest invalidation of a newer version to have returned.
			sup := int64(math.MaxInt64)
			// (A few are enough: versions commit in order, and a later
			// one returning first only makes the read look fresher.)
			for _, c := range commits[i:min(len(commits), i+8)] {
				if c.Commit > e.Start {
					break
				}
				sup = min(sup, c.End)
			}
			if age := e.Start - sup; age > int64(bound+r.Params.Slack) {
				v.Guarantee, v.Want = G5, commits[i].Version
				v.Why = fmt.Sprintf("cut-off node served a version superseded %v before the read (bound %v + slack %v)",
					time.Duration(age), bound, r.Params.Slack)
				r.violate(v)
			}
		}
	}
	r.writeNines(pts, commits, troubled)
	return staleness
}

// writeNines counts, per committed write of one key, whether some node
// served a version older than it more than each of WriteBounds after it
// committed (Meta's per-write unit). pts are the key's points in time order.
func (r *Report) writeNines(pts []point, commits []*Event, troubled [][2]int64) {
	// The key's successful reads in start order, and the lowest version
	// returned by a read at or after each of them.
	var starts []int64
	var low []uint64
	for _, p := range pts {
		if p.rank == 0 {
			starts = append(starts, p.at)
			low = append(low, p.ev.Version)
		}
	}
	for j := len(low) - 2; j >= 0; j-- {
		low[j] = min(low[j], low[j+1])
	}
	for _, c := range commits {
		if c.Version == 0 {
			continue // a write that committed nothing
		}
		for b, d := range WriteBounds {
			at := c.Commit + int64(d)
			if at >= r.lastRead {
				continue // the history does not reach that far: not judged
			}
			ph := &r.Healthy
			if overlaps(troubled, c.Commit, at) {
				ph = &r.Faulty
			}
			s := &ph.Write1s
			if b == 1 {
				s = &ph.Write10s
			}
			// The first read starting after at.
			i, _ := slices.BinarySearch(starts, at+1)
			s.add(i < len(low) && low[i] < c.Version)
		}
	}
}

// overlaps reports whether [from, to] meets one of the intervals.
func overlaps(iv [][2]int64, from, to int64) bool {
	for _, x := range iv {
		if x[0] <= to && from <= x[1] {
			return true
		}
	}
	return false
}

// cutIn reports whether t falls in one of the intervals.
func cutIn(iv [][2]int64, t int64) bool {
	for _, x := range iv {
		if t >= x[0] && t <= x[1] {
			return true
		}
	}
	return false
}
