package node

import (
	"time"

	"github.com/nearcache/nearcache/node/internal/peer"
)

// Stats is a snapshot of a node's counters, from [Node.Stats]. Counters are
// cumulative since Start.
type Stats struct {
	Name    string
	Trusted bool // false while the node is degraded (G5): cached values are not served
	// Members counts the cluster members this node sees alive, itself included.
	Members int
	// LastHeard is how long ago the least recently heard live peer was heard on
	// the invalidation stream (0 without peers).
	LastHeard time.Duration
	Cluster   ClusterStats
	// The owner-fill channel's counters (zero when owner fills are off):
	// what this node answered as owner, and what it asked of owners.
	FillServer FillServerStats
	FillClient FillClientStats
	Groups     []GroupStats // sorted by name
}

// FillServerStats count the owner-fill requests this node's server took
// (connections, refusals by reason, errors).
type FillServerStats = peer.ServerStats

// FillClientStats count this node's requests to owners (dials, reuse,
// failures by kind).
type FillClientStats = peer.ClientStats

// ClusterStats are the gossip layer's counters.
type ClusterStats struct {
	Published          uint64 // invalidations this node published
	Received           uint64 // remote invalidations received (first receipt)
	Duplicates         uint64 // remote invalidations received again and dropped
	GapsDetected       uint64 // missing sequence numbers noticed
	Repaired           uint64 // missing invalidations recovered by repair or anti-entropy
	Unrepairable       uint64 // gaps nobody could repair (each purges the caches)
	PendingGaps        int    // gaps not yet repaired
	MessagesSent       uint64
	MessagesReceived   uint64
	DecodeErrors       uint64
	Rejoins            uint64
	DegradedTransition uint64 // times the node stopped trusting its cache
	Rejected           uint64 // gossip refused: an implausible incarnation, a stale leave, a replayed heartbeat
	StreamsRefused     uint64 // gossip TCP streams closed unread (over the caps)
	StreamsCut         uint64 // gossip TCP streams cut at their size limit
	MemberlistErrors   uint64 // memberlist's WARN and ERR lines (refused packets and streams: a wrong key or cluster name, a flood)
}

// GroupStats are one group's counters.
type GroupStats struct {
	Name string
	// Gets by result.
	Hits   uint64 // served from the local cache
	Misses uint64 // not cached: loaded (or joined a load)
	// StaleRejected counts Gets (once each, however many times they
	// reloaded) during which a load came back below the key's floor and
	// was refused. Those Gets are also counted as a Miss, Bypass or
	// Degraded: it is not a result of its own, so a hit ratio is
	// Hits / (Hits + Misses).
	StaleRejected uint64
	Bypass        uint64 // Authoritative or Verified reads that went to the source
	Degraded      uint64 // reads while the node did not trust its cache (G5)
	// Loads.
	Loads      uint64 // loader calls
	LoadErrors uint64
	Coalesced  uint64 // Gets that waited for another caller's load instead of loading
	// Expiry control.
	EarlyRefreshes uint64 // background reloads of hot keys before their TTL ended
	NegativeHits   uint64 // Gets answered "not found" from a negative entry
	StaleServed    uint64 // expired values served because reloading failed (StaleOnError)
	// Fills by where the value came from (G6).
	FillsLocal    uint64 // loader calls on this node (as owner, alone, or falling back)
	FillsOwner    uint64 // misses served by the key's owner
	FillsFallback uint64 // misses whose owner could not answer: loaded here instead
	FillsServed   uint64 // fills this node answered as owner for peers
	OwnerErrors   OwnerErrors
	// Invalidations.
	InvalidationsSent     uint64       // published by this node (keys and tags)
	InvalidationsReceived uint64       // from other nodes
	InvalidationsApplied  uint64       // received ones that raised a floor or bumped a tag
	Purges                uint64       // whole-group purges (unrepairable gap, regained trust)
	VersionsRefused       uint64       // invalidations refused: version above MaxVersion, or a clock stamp implausibly far ahead
	StaleFastFails        uint64       // reads failed at once with a StaleError while the key's floor stayed above the source (one load per key per back-off)
	Sampler               SamplerStats // the consistency sampler's checks of cache hits against the source
	Local                 LocalStats
}

// LocalStats are the in-process store's figures for one group.
type LocalStats struct {
	Floors       int    // version floors held
	FloorsFolded uint64 // floors folded into coarse buckets (memory bound reached)
	SetsStored   uint64
	SetsRejected uint64 // refused by floor, tag, supersession or the store
	KeysAdded    uint64 // ristretto's counters
	KeysEvicted  uint64
	CostAdded    uint64
	CostEvicted  uint64
}

// OwnerErrors counts failed requests to key owners, by kind.
type OwnerErrors struct {
	Transport uint64 // dial, i/o, decode or authentication failure
	Timeout   uint64 // no answer within OwnerTimeout
	Refused   uint64 // the owner refused this node (membership or key)
	Owner     uint64 // the owner answered with an error, overload or below our floor
}
