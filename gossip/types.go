package gossip

import (
	"errors"
	"strings"
	"time"

	"github.com/hashicorp/memberlist"
)

// ErrClosed is returned by calls on a closed Cluster.
var ErrClosed = errors.New("gossip: closed")

// Transport is the memberlist transport seam, aliased so callers (tests,
// node) need not import memberlist. See package gossip/gossiptest.
type Transport = memberlist.NodeAwareTransport

// Kind says what an Invalidation invalidates.
type Kind uint8

const (
	KindKey   Kind = 1 // one key of a group
	KindTag   Kind = 2 // every key stored under a tag
	KindGroup Kind = 3 // a whole group
	// KindProgress is a change feed's progress for a group: Version is the
	// time (unix nanos) as of which every change of the source's log was
	// applied and acknowledged by every live member.
	KindProgress Kind = 4
)

// Invalidation is one versioned invalidation.
type Invalidation struct {
	Group   string // <= MaxGroupLen bytes
	Kind    Kind
	Key     string // key or tag name, <= MaxKeyLen bytes; empty for KindGroup and KindProgress
	Version uint64 // 0 allowed (tags and group purges carry 0)

	// Set by gossip on publish; read-only for receivers.
	Origin string // publishing node's name
	Seq    uint64 // per-origin sequence number (per incarnation), from 1
	SentAt int64  // origin's wall clock at publish, unix nanos (propagation delay)
}

// Member is a cluster member as memberlist sees it.
type Member struct {
	Name  string
	Addr  string // host:port
	Meta  []byte
	State string // "alive" or "suspect" (Members lists live members only)
}

// Handler receives what the cluster delivers. Calls are serialised: never
// two at once, from one goroutine. They must not block long.
type Handler interface {
	// Invalidations delivers remote invalidations. Each (origin,
	// incarnation, seq) is delivered at most once, in any order. The slice
	// is owned by the callee after the call.
	Invalidations(batch []Invalidation)
	// Unrepairable reports that invalidations published by origin were lost
	// and nobody can resend them: the receiver must stop trusting everything
	// it cached (purge).
	Unrepairable(origin string)
	// MembersChanged reports the member list after a join, leave, failure
	// or meta update (same contents as Cluster.Members).
	MembersChanged(members []Member)
}

// HandlerFuncs adapts functions to Handler; nil funcs are ignored.
type HandlerFuncs struct {
	InvalidationsFunc  func(batch []Invalidation)
	UnrepairableFunc   func(origin string)
	MembersChangedFunc func(members []Member)
}

func (h HandlerFuncs) Invalidations(b []Invalidation) {
	if h.InvalidationsFunc != nil {
		h.InvalidationsFunc(b)
	}
}

func (h HandlerFuncs) Unrepairable(origin string) {
	if h.UnrepairableFunc != nil {
		h.UnrepairableFunc(origin)
	}
}

func (h HandlerFuncs) MembersChanged(m []Member) {
	if h.MembersChangedFunc != nil {
		h.MembersChangedFunc(m)
	}
}

// Health is how fresh this node's view of the cluster is.
type Health struct {
	Solo          bool      // Join empty and no peer ever seen: nothing to hear from
	Synced        bool      // completed >= 1 push/pull state exchange with a peer since Start (reset when all peers are lost)
	AlivePeers    int       // live members other than self
	FreshPeers    int       // alive peers whose heartbeat named this incarnation since the time given to HealthSince (all of them for Health)
	ExpectedPeers int       // AlivePeers + failed (not left) members within FailedMemberRetention
	OldestHeard   time.Time // min over alive peers of when their stream (invalidation or heartbeat) was last heard; zero if none
	PendingGaps   int       // missing (origin, seq) not yet repaired
}

// Stats are cumulative counters (QueueLen is current).
type Stats struct {
	Published          uint64 // invalidations published here
	MessagesSent       uint64 // gossip messages sent directly (batches, acks, repairs, heartbeats)
	MessagesReceived   uint64 // gossip messages received
	Received           uint64 // invalidations received for the first time (delivered)
	Duplicates         uint64 // invalidations received again
	GapsDetected       uint64 // missing seqs noticed
	Repaired           uint64 // missing seqs later received
	Unrepairable       uint64 // missing seqs given up
	AcksReceived       uint64
	HeartbeatsSent     uint64
	HeartbeatsReceived uint64
	PushPulls          uint64 // remote states merged
	Rejoins            uint64 // rejoin attempts
	Outgrown           uint64 // times this node took an incarnation past one the cluster remembered (the clock stepped back across a restart)
	DecodeErrors       uint64
	Rejected           uint64 // well-formed messages or parts refused: an implausible incarnation, a stale leave, a replayed heartbeat
	StreamsRefused     uint64 // TCP streams closed unread: over MaxStreams or MaxStreamsPerSource
	StreamsCut         uint64 // TCP streams cut at MaxStreamBytes
	MemberlistErrors   uint64 // memberlist's WARN and ERR lines, mostly refused packets and streams (a wrong key or cluster name, a flood); each kind logged at most once per 10s
	QueueLen           int    // gossip retransmission queue length
}

// AckError is returned by PublishAcked when members did not acknowledge
// before the context ended.
type AckError struct {
	Missing []string // member names, sorted
	Err     error    // the context's error
}

func (e *AckError) Error() string {
	return "gossip: not acknowledged by " + strings.Join(e.Missing, ", ") + ": " + e.Err.Error()
}

func (e *AckError) Unwrap() error { return e.Err }
