package gossip

import "time"

// stream tracks what this node received of one origin incarnation: every
// seq <= high is received (or given up), above holds received seqs > high,
// and known is the highest seq known to exist. Seqs in (high, known] not in
// above are gaps. Cluster.mu guards it.
type stream struct {
	high, known uint64
	above       map[uint64]struct{}
	touched     time.Time // last message about this stream

	// repair state
	gapSince time.Time // when the current gaps were first seen; zero = none
	inflight bool      // a request is out
	askedAt  time.Time
	rot      int // next candidate to ask (0 = the origin)
	attempts int // answers without the missing data
	tries    int // requests sent
}

func newStream(base uint64) *stream {
	return &stream{high: base, known: base, above: make(map[uint64]struct{})}
}

func (s *stream) missing() int {
	d := s.known - s.high - uint64(len(s.above))
	if d > 1<<30 {
		return 1 << 30
	}
	return int(d)
}

// note records that seqs up to k exist; it returns how many became gaps.
func (s *stream) note(k uint64) uint64 {
	if k <= s.known {
		return 0
	}
	g := k - s.known
	s.known = k
	return g
}

// receive records seq. fresh: first receipt; repaired: it was a known gap;
// newGaps: seqs that became gaps because seq jumped past them.
func (s *stream) receive(seq uint64) (fresh, repaired bool, newGaps uint64) {
	if seq <= s.high {
		return false, false, 0
	}
	if _, ok := s.above[seq]; ok {
		return false, false, 0
	}

	if seq <= s.known {
		repaired = true
	} else {
		newGaps = seq - s.known - 1
		s.known = seq
	}
	s.above[seq] = struct{}{}
	s.advance()
	return true, repaired, newGaps
}

func (s *stream) advance() {
	for {
		if _, ok := s.above[s.high+1]; !ok {
			return
		}
		delete(s.above, s.high+1)
		s.high++
	}
}

// skip gives up on every gap up to to; it returns how many were dropped.
func (s *stream) skip(to uint64) uint64 {
	if to <= s.high {
		return 0
	}
	if to > s.known {
		to = s.known
	}
	var received uint64
	for q := range s.above {
		if q <= to {
			delete(s.above, q)
			received++
		}
	}
	dropped := to - s.high - received
	s.high = to
	s.advance()
	return dropped
}

// missingRanges lists up to max missing seqs as ranges.
func (s *stream) missingRanges(max int) []seqRange {
	var out []seqRange
	n := 0
	for q := s.high + 1; q <= s.known && n < max && len(out) < maxRanges; q++ {
		if _, ok := s.above[q]; ok {
			continue
		}
		n++
		if len(out) > 0 && out[len(out)-1].Last == q-1 {
			out[len(out)-1].Last = q
		} else {
			out = append(out, seqRange{q, q})
		}
	}
	return out
}

func (s *stream) resetRepair() {
	s.gapSince = time.Time{}
	s.inflight = false
	s.rot, s.attempts, s.tries = 0, 0, 0
}
