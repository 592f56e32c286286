package node

import "sync/atomic"

// counter names one of a group's counters. The counters are an array
// indexed by it (as local's are), so a snapshot is one loop over
// groupFields and a new counter is one line here and one field in
// GroupStats.
type counter uint8

const (
	cMisses counter = iota
	cStaleRejected
	cBypass
	cDegraded
	cLoads
	cLoadErrors
	cCoalesced
	cEarlyRefreshes
	cNegativeHits
	cStaleServed
	cFillsLocal
	cFillsOwner
	cFillsFallback
	cFillsServed
	cOwnerTransport // dial, i/o, decode, auth: the owner could not be reached or understood
	cOwnerTimeout   // no answer within OwnerTimeout
	cOwnerRefused   // the owner refused us (membership, key)
	cOwnerError     // the owner answered with an error or overload
	cSent
	cReceived
	cApplied
	cPurges
	cSetsStored
	cSetsRejected
	cInnerLookups    // store hits that served no Get: Verified reads' look-ups, owners answering peers, stale-on-error and expired StaleOnError look-ups
	cVersionsRefused // invalidations refused: version above MaxVersion, or a clock stamp implausibly far ahead
	cStaleFastFails  // reads failed at once with a StaleError: the key's floor stayed above the source (back-off)
	numCounters
)

// counters are a group's cumulative counts since it was created.
type counters [numCounters]atomic.Uint64

func (c *counters) inc(k counter) { c[k].Add(1) }

func (c *counters) add(k counter, n uint64) { c[k].Add(n) }

// groupFields maps each counter to its field in GroupStats (nil: not
// reported as such). Read-only.
var groupFields = [numCounters]func(*GroupStats) *uint64{
	cMisses:          func(s *GroupStats) *uint64 { return &s.Misses },
	cStaleRejected:   func(s *GroupStats) *uint64 { return &s.StaleRejected },
	cBypass:          func(s *GroupStats) *uint64 { return &s.Bypass },
	cDegraded:        func(s *GroupStats) *uint64 { return &s.Degraded },
	cLoads:           func(s *GroupStats) *uint64 { return &s.Loads },
	cLoadErrors:      func(s *GroupStats) *uint64 { return &s.LoadErrors },
	cCoalesced:       func(s *GroupStats) *uint64 { return &s.Coalesced },
	cEarlyRefreshes:  func(s *GroupStats) *uint64 { return &s.EarlyRefreshes },
	cNegativeHits:    func(s *GroupStats) *uint64 { return &s.NegativeHits },
	cStaleServed:     func(s *GroupStats) *uint64 { return &s.StaleServed },
	cFillsLocal:      func(s *GroupStats) *uint64 { return &s.FillsLocal },
	cFillsOwner:      func(s *GroupStats) *uint64 { return &s.FillsOwner },
	cFillsFallback:   func(s *GroupStats) *uint64 { return &s.FillsFallback },
	cFillsServed:     func(s *GroupStats) *uint64 { return &s.FillsServed },
	cOwnerTransport:  func(s *GroupStats) *uint64 { return &s.OwnerErrors.Transport },
	cOwnerTimeout:    func(s *GroupStats) *uint64 { return &s.OwnerErrors.Timeout },
	cOwnerRefused:    func(s *GroupStats) *uint64 { return &s.OwnerErrors.Refused },
	cOwnerError:      func(s *GroupStats) *uint64 { return &s.OwnerErrors.Owner },
	cSent:            func(s *GroupStats) *uint64 { return &s.InvalidationsSent },
	cReceived:        func(s *GroupStats) *uint64 { return &s.InvalidationsReceived },
	cApplied:         func(s *GroupStats) *uint64 { return &s.InvalidationsApplied },
	cPurges:          func(s *GroupStats) *uint64 { return &s.Purges },
	cSetsStored:      func(s *GroupStats) *uint64 { return &s.Local.SetsStored },
	cSetsRejected:    func(s *GroupStats) *uint64 { return &s.Local.SetsRejected },
	cVersionsRefused: func(s *GroupStats) *uint64 { return &s.VersionsRefused },
	cStaleFastFails:  func(s *GroupStats) *uint64 { return &s.StaleFastFails },
}

// snapshot copies every counter into its GroupStats field.
func (c *counters) snapshot(s *GroupStats) {
	for k, field := range groupFields {
		if field != nil {
			*field(s) = c[k].Load()
		}
	}
}
