// Package gossip carries versioned cache invalidations between the nodes of a
// nearcache cluster over hashicorp/memberlist, and reports how fresh a node's
// view of the cluster is.
//
// It is the only package of nearcache that imports memberlist. gossip knows
// nothing of caches: package node applies what a [Handler] receives.
//
// # Delivery
//
// [Cluster.Publish] stamps each [Invalidation] with its origin's name, the
// origin's incarnation (its start time) and a per-origin sequence number, then
// sends it at once to every alive member by direct fan-out (one UDP packet per
// batch; batches are split to fit memberlist's packet budget, see packetBudget
// in wire.go) and queues it for memberlist's gossip retransmission. A lone
// invalidation too large for any packet (a group and a key both near their
// limits) goes over TCP instead.
//
// Receivers deliver each (origin, incarnation, seq) once. A sequence number
// above the next expected one, or a heartbeat (every HeartbeatInterval each
// node tells every peer its last seq) announcing later ones, is a gap: it is
// asked for over TCP from the origin, then from the other peers, all of which
// answer from their recent log. When nobody has it, [Handler.Unrepairable]
// tells the node to stop trusting its cache. Push/pull anti-entropy exchanges
// per-origin vectors and the newest invalidations.
//
// First contact with an origin starts tracking where it is then (nothing is
// owed from before), except that a new incarnation of a known origin is
// tracked from seq 1.
//
// # Freshness
//
// [Cluster.Health] reports when each alive peer's stream was last heard
// (OldestHeard), whether a state exchange has completed (Synced), pending
// gaps, and how many peers are expected. Membership alone is not freshness:
// memberlist's TCP fallback ping keeps a node alive while its packets are lost.
//
// # Lock order
//
// memberlist calls the event delegate with its node lock held, and that
// delegate takes Cluster.mu; so nothing in this package calls memberlist while
// holding Cluster.mu.
package gossip
