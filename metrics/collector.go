package metrics

import (
	"sync"

	"github.com/nearcache/nearcache/node"
	"github.com/prometheus/client_golang/prometheus"
)

// descs are the descriptions of the metrics read from node.Stats at scrape
// time. They depend only on the namespace, so a Metrics builds them once.
type descs struct {
	// Per group.
	gets, loads, coalesced, invalidations, purges  *prometheus.Desc
	fills, ownerErrors, expiry                     *prometheus.Desc
	floors, floorsFolded, sets                     *prometheus.Desc
	keysAdded, keysEvicted, costAdded, costEvicted *prometheus.Desc
	// Node-wide.
	members, trusted, degradedTransitions, lastHeard                 *prometheus.Desc
	gaps, repaired, unrepairable, pendingGaps                        *prometheus.Desc
	published, received, duplicates, messages, decodeErrors, rejoins *prometheus.Desc
}

func newDescs(ns string) *descs {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(prometheus.BuildFQName(ns, "", name), help, labels, nil)
	}
	return &descs{
		gets:          d("gets_total", "Gets by result: hit (served from the local cache), miss (loaded or joined a load), stale_rejected (a load below the key's version floor was refused), bypass (Verified or Authoritative read), degraded (read while the node did not trust its cache).", "group", "result"),
		loads:         d("loads_total", "Loader calls by outcome.", "group", "outcome"),
		coalesced:     d("coalesced_waits_total", "Gets that waited for another caller's load instead of loading.", "group"),
		invalidations: d("invalidations_total", "Invalidations by direction: sent (published by this node), received (from other nodes), applied (received ones that raised a floor or bumped a tag).", "group", "direction"),
		purges:        d("purges_total", "Whole-group purges of the local cache (unrepairable gap, regained trust).", "group"),
		fills:         d("fills_total", "Fills by source: local (a loader call here: as the key's owner, alone, or falling back), owner (served by the key's owner), fallback (the owner could not answer; loaded here), served (answered as owner for peers).", "group", "source"),
		ownerErrors:   d("owner_errors_total", "Failed requests to key owners by kind: transport (dial, i/o, decode, authentication), timeout (no answer within OwnerTimeout), refused (membership or key), owner (the owner answered with an error, overload or below our floor).", "group", "kind"),
		expiry:        d("expiry_events_total", "Expiry control by event: early_refresh (a hot key reloaded in the background before its TTL ended), negative_hit (not-found answered from a negative entry), stale_served (an expired value served because its reload failed).", "group", "event"),

		floors:       d("local_floors", "Version floors held by the local store.", "group"),
		floorsFolded: d("local_floors_folded_total", "Version floors folded into coarse buckets because the floor memory bound was reached.", "group"),
		sets:         d("local_sets_total", "Local store sets by result: stored, or rejected (by floor, tag, supersession or the store).", "group", "result"),
		keysAdded:    d("local_keys_added_total", "Keys added to the local store (ristretto).", "group"),
		keysEvicted:  d("local_keys_evicted_total", "Keys evicted from the local store (ristretto).", "group"),
		costAdded:    d("local_cost_added_total", "Cost added to the local store (ristretto).", "group"),
		costEvicted:  d("local_cost_evicted_total", "Cost evicted from the local store (ristretto).", "group"),

		members:             d("members", "Cluster members this node sees alive, itself included."),
		trusted:             d("trusted", "1 while the node trusts its cache, 0 while degraded (it has not heard from the cluster within MaxStaleness)."),
		degradedTransitions: d("degraded_transitions_total", "Times the node stopped trusting its cache."),
		lastHeard:           d("last_heard_seconds", "Seconds since the least recently heard live peer was heard on the invalidation stream (0 without peers)."),

		gaps:         d("gossip_gaps_detected_total", "Missing invalidation sequence numbers noticed."),
		repaired:     d("gossip_repaired_total", "Missing invalidations recovered by repair or anti-entropy."),
		unrepairable: d("gossip_unrepairable_total", "Gaps nobody could repair; each purges the caches."),
		pendingGaps:  d("gossip_pending_gaps", "Gaps not yet repaired."),
		published:    d("gossip_published_total", "Invalidations this node published."),
		received:     d("gossip_received_total", "Remote invalidations received for the first time."),
		duplicates:   d("gossip_duplicates_total", "Remote invalidations received again and dropped."),
		messages:     d("gossip_messages_total", "Gossip messages by direction.", "direction"),
		decodeErrors: d("gossip_decode_errors_total", "Gossip messages that failed to decode."),
		rejoins:      d("gossip_rejoins_total", "Times the node rejoined the cluster from its seed list."),
	}
}

func (d *descs) describe(ch chan<- *prometheus.Desc) {
	for _, x := range []*prometheus.Desc{
		d.gets, d.loads, d.coalesced, d.invalidations, d.purges, d.fills, d.ownerErrors, d.expiry,
		d.floors, d.floorsFolded, d.sets, d.keysAdded, d.keysEvicted, d.costAdded, d.costEvicted,
		d.members, d.trusted, d.degradedTransitions, d.lastHeard,
		d.gaps, d.repaired, d.unrepairable, d.pendingGaps,
		d.published, d.received, d.duplicates, d.messages, d.decodeErrors, d.rejoins,
	} {
		ch <- x
	}
}

// attachment is what one Attach registers: a single collector holding the
// snapshot metrics and both histograms, so registration is all or nothing.
type attachment struct {
	descs *descs
	load  *prometheus.HistogramVec
	prop  *prometheus.HistogramVec

	// mu guards stats and detached; Collect read-holds it while stats runs.
	mu       sync.RWMutex
	stats    func() node.Stats
	detached bool
}

var _ prometheus.Collector = (*attachment)(nil)

func newAttachment(d *descs, cfg Config, stats func() node.Stats) *attachment {
	return &attachment{
		descs: d,
		stats: stats,
		load: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: cfg.Namespace,
			Name:      "load_duration_seconds",
			Help:      "Duration of loader calls, successful or not.",
			Buckets:   cfg.LoadBuckets,
		}, []string{"group"}),
		prop: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: cfg.Namespace,
			Name:      "propagation_delay_seconds",
			Help:      "Delay from an invalidation's publication at its origin to its application here (origin's wall clock; meaningful on synced clocks).",
			Buckets:   cfg.PropagationBuckets,
		}, []string{"group"}),
	}
}

// detach stops Collect from calling stats, waiting for a running call.
func (a *attachment) detach() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.detached = true
	a.stats = nil
}

// Describe implements prometheus.Collector.
func (a *attachment) Describe(ch chan<- *prometheus.Desc) {
	a.descs.describe(ch)
	a.load.Describe(ch)
	a.prop.Describe(ch)
}

// Collect implements prometheus.Collector. It takes one snapshot per scrape.
func (a *attachment) Collect(ch chan<- prometheus.Metric) {
	a.mu.RLock()
	if a.detached {
		a.mu.RUnlock()
		return
	}
	s := a.stats()
	a.mu.RUnlock()

	a.collectNode(ch, &s)
	for i := range s.Groups {
		a.collectGroup(ch, &s.Groups[i])
	}
	a.load.Collect(ch)
	a.prop.Collect(ch)
}

func (a *attachment) collectNode(ch chan<- prometheus.Metric, s *node.Stats) {
	d := a.descs
	gauge := func(desc *prometheus.Desc, v float64) {
		ch <- prometheus.MustNewConstMetric(desc, prometheus.GaugeValue, v)
	}
	counter := func(desc *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(desc, prometheus.CounterValue, float64(v), labels...)
	}
	trusted := 0.0
	if s.Trusted {
		trusted = 1
	}
	gauge(d.members, float64(s.Members))
	gauge(d.trusted, trusted)
	gauge(d.lastHeard, s.LastHeard.Seconds())
	c := &s.Cluster
	counter(d.degradedTransitions, c.DegradedTransition)
	counter(d.gaps, c.GapsDetected)
	counter(d.repaired, c.Repaired)
	counter(d.unrepairable, c.Unrepairable)
	gauge(d.pendingGaps, float64(c.PendingGaps))
	counter(d.published, c.Published)
	counter(d.received, c.Received)
	counter(d.duplicates, c.Duplicates)
	counter(d.messages, c.MessagesSent, "sent")
	counter(d.messages, c.MessagesReceived, "received")
	counter(d.decodeErrors, c.DecodeErrors)
	counter(d.rejoins, c.Rejoins)
}

func (a *attachment) collectGroup(ch chan<- prometheus.Metric, g *node.GroupStats) {
	d := a.descs
	group := validLabel(g.Name)
	counter := func(desc *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(desc, prometheus.CounterValue, float64(v), append([]string{group}, labels...)...)
	}
	counter(d.gets, g.Hits, "hit")
	counter(d.gets, g.Misses, "miss")
	counter(d.gets, g.StaleRejected, "stale_rejected")
	counter(d.gets, g.Bypass, "bypass")
	counter(d.gets, g.Degraded, "degraded")
	// Loads counts every loader call, failed ones included.
	counter(d.loads, g.Loads-min(g.LoadErrors, g.Loads), "ok")
	counter(d.loads, g.LoadErrors, "error")
	counter(d.coalesced, g.Coalesced)
	counter(d.invalidations, g.InvalidationsSent, "sent")
	counter(d.invalidations, g.InvalidationsReceived, "received")
	counter(d.invalidations, g.InvalidationsApplied, "applied")
	counter(d.purges, g.Purges)
	counter(d.fills, g.FillsLocal, "local")
	counter(d.fills, g.FillsOwner, "owner")
	counter(d.fills, g.FillsFallback, "fallback")
	counter(d.fills, g.FillsServed, "served")
	counter(d.ownerErrors, g.OwnerErrors.Transport, "transport")
	counter(d.ownerErrors, g.OwnerErrors.Timeout, "timeout")
	counter(d.ownerErrors, g.OwnerErrors.Refused, "refused")
	counter(d.ownerErrors, g.OwnerErrors.Owner, "owner")
	counter(d.expiry, g.EarlyRefreshes, "early_refresh")
	counter(d.expiry, g.NegativeHits, "negative_hit")
	counter(d.expiry, g.StaleServed, "stale_served")
	l := &g.Local
	ch <- prometheus.MustNewConstMetric(d.floors, prometheus.GaugeValue, float64(l.Floors), group)
	counter(d.floorsFolded, l.FloorsFolded)
	counter(d.sets, l.SetsStored, "stored")
	counter(d.sets, l.SetsRejected, "rejected")
	counter(d.keysAdded, l.KeysAdded)
	counter(d.keysEvicted, l.KeysEvicted)
	counter(d.costAdded, l.CostAdded)
	counter(d.costEvicted, l.CostEvicted)
}
