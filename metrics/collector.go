package metrics

import (
	"sync"

	"github.com/nearcache/nearcache/node"
	"github.com/prometheus/client_golang/prometheus"
)

// family is one metric family read from node.Stats at scrape time: its
// name, help and labels (a per-group family has "group" first).
type family struct {
	name, help string
	labels     []string
}

// The families, in the order Describe sends them.
var families = []family{
	{"gets_total", "Gets by result: hit (served from the local cache), miss (a plain Get that loaded or joined a load), bypass (Verified or Authoritative read), degraded (read while the node did not trust its cache). Not a partition: stale_rejected counts Gets whose load came back below the key's version floor and was refused, once per Get, also counted as miss or bypass. Hit ratio = hit / (hit + miss).", []string{"group", "result"}},
	{"loads_total", "Loader calls by outcome.", []string{"group", "outcome"}},
	{"coalesced_waits_total", "Gets that waited for another caller's load instead of loading.", []string{"group"}},
	{"invalidations_total", "Invalidations by direction: sent (published by this node), received (from other nodes), applied (received ones that raised a floor or bumped a tag).", []string{"group", "direction"}},
	{"purges_total", "Whole-group purges of the local cache (unrepairable gap, regained trust).", []string{"group"}},
	{"fills_total", "Fills by source: local (a loader call here: as the key's owner, alone, or falling back), owner (served by the key's owner), fallback (the owner could not answer; loaded here), served (answered as owner for peers).", []string{"group", "source"}},
	{"owner_errors_total", "Failed requests to key owners by kind: transport (dial, i/o, decode, authentication), timeout (no answer within OwnerTimeout), refused (membership or key), owner (the owner answered with an error, overload or below our floor).", []string{"group", "kind"}},
	{"expiry_events_total", "Expiry control by event: early_refresh (a hot key reloaded in the background before its TTL ended), negative_hit (not-found answered from a negative entry), stale_served (an expired value served because its reload failed).", []string{"group", "event"}},
	{"sampler_checks_total", "Cache hits the consistency sampler checked against the source, by result: within (not superseded, or its invalidation arrived within MaxStaleness), beyond (superseded and still not invalidated MaxStaleness after the check: served beyond the bound).", []string{"group", "result"}},
	{"sampler_superseded_total", "Checked hits whose value the source had already superseded when checked.", []string{"group"}},
	{"sampler_dropped_total", "Sampled hits not checked: over the sampler's budget or queue.", []string{"group"}},
	{"sampler_nines", "-log10 of the share of checked hits beyond the bound over the last hour (log10 of the checks when none was).", []string{"group"}},
	{"versions_refused_total", "Invalidations refused: version above 2^63-1, or a clock stamp implausibly far ahead.", []string{"group"}},
	{"stale_fast_fails_total", "Reads and fill requests failed at once: the key's floor stays above its source (one load per back-off).", []string{"group"}},
	{"local_floors", "Version floors held by the local store.", []string{"group"}},
	{"local_floors_folded_total", "Version floors folded into coarse buckets because the floor memory bound was reached.", []string{"group"}},
	{"local_sets_total", "Local store sets by result: stored, or rejected (by floor, tag, supersession or the store).", []string{"group", "result"}},
	{"local_keys_added_total", "Keys added to the local store (ristretto).", []string{"group"}},
	{"local_keys_evicted_total", "Keys evicted from the local store (ristretto).", []string{"group"}},
	{"local_added_bytes_total", "Bytes added to the local store (their ristretto cost: GroupConfig.Cost, by default key + value + 64).", []string{"group"}},
	{"local_evicted_bytes_total", "Bytes evicted from the local store (their ristretto cost: GroupConfig.Cost, by default key + value + 64).", []string{"group"}},

	{"members", "Cluster members this node sees alive, itself included.", nil},
	{"trusted", "1 while the node trusts its cache, 0 while degraded (it has not heard from the cluster within MaxStaleness).", nil},
	{"degraded_transitions_total", "Times the node stopped trusting its cache.", nil},
	{"last_heard_seconds", "Seconds since the least recently heard live peer was heard on the invalidation stream (0 without peers).", nil},
	{"gossip_gaps_detected_total", "Missing invalidation sequence numbers noticed.", nil},
	{"gossip_repaired_total", "Missing invalidations recovered by repair or anti-entropy.", nil},
	{"gossip_unrepairable_total", "Gaps nobody could repair; each purges the caches.", nil},
	{"gossip_pending_gaps", "Gaps not yet repaired.", nil},
	{"gossip_published_total", "Invalidations this node published.", nil},
	{"gossip_received_total", "Remote invalidations received for the first time.", nil},
	{"gossip_duplicates_total", "Remote invalidations received again and dropped.", nil},
	{"gossip_messages_total", "Gossip messages by direction.", []string{"direction"}},
	{"gossip_decode_errors_total", "Gossip messages that failed to decode.", nil},
	{"gossip_rejoins_total", "Times the node rejoined the cluster from its seed list.", nil},
	{"fill_server_events_total", "Owner-fill server events: conn (connection accepted), request (well-formed request), refused_auth (no key, unknown key, or a frame that does not authenticate), refused_replay (a sealed frame replayed or reordered), refused_member (sender not a member), refused_target (a connection meant for another node), refused_conns (closed at the connection cap), evicted (closed to make room), idle_closed (first-frame or idle timeout), error (answered with an error), decode_error (malformed or oversized frame).", []string{"event"}},
	{"gossip_rejected_total", "Well-formed gossip messages or parts refused: implausible incarnation, stale leave, replayed heartbeat.", nil},
	{"gossip_streams_refused_total", "Gossip TCP streams closed unread: over the total or per-source cap.", nil},
	{"gossip_streams_cut_total", "Gossip TCP streams cut at their size limit before memberlist buffered them.", nil},
	{"gossip_memberlist_errors_total", "memberlist's WARN and ERR lines (refused packets and streams: a wrong key or cluster name, a flood).", nil},
	{"fill_client_events_total", "Owner-fill client events: fill (request to an owner), dial, reused (pooled connection), retry (after a stale pooled connection), handshake (keyed connection opened), and failures dial_error, timeout, io_error, decode_error, auth_error.", []string{"event"}},
}

// sample is one value of a family: a counter unless gauge, with the label
// value after "group" ("" = the family has no such label).
type sample[S any] struct {
	family string
	label  string
	gauge  bool
	value  func(*S) float64
}

func u(v uint64) float64 { return float64(v) }

// groupSamples are read from each node.GroupStats.
var groupSamples = []sample[node.GroupStats]{
	{"gets_total", "hit", false, func(g *node.GroupStats) float64 { return u(g.Hits) }},
	{"gets_total", "miss", false, func(g *node.GroupStats) float64 { return u(g.Misses) }},
	{"gets_total", "stale_rejected", false, func(g *node.GroupStats) float64 { return u(g.StaleRejected) }},
	{"gets_total", "bypass", false, func(g *node.GroupStats) float64 { return u(g.Bypass) }},
	{"gets_total", "degraded", false, func(g *node.GroupStats) float64 { return u(g.Degraded) }},
	// Loads counts every loader call, failed ones included.
	{"loads_total", "ok", false, func(g *node.GroupStats) float64 { return u(g.Loads - min(g.LoadErrors, g.Loads)) }},
	{"loads_total", "error", false, func(g *node.GroupStats) float64 { return u(g.LoadErrors) }},
	{"coalesced_waits_total", "", false, func(g *node.GroupStats) float64 { return u(g.Coalesced) }},
	{"invalidations_total", "sent", false, func(g *node.GroupStats) float64 { return u(g.InvalidationsSent) }},
	{"invalidations_total", "received", false, func(g *node.GroupStats) float64 { return u(g.InvalidationsReceived) }},
	{"invalidations_total", "applied", false, func(g *node.GroupStats) float64 { return u(g.InvalidationsApplied) }},
	{"purges_total", "", false, func(g *node.GroupStats) float64 { return u(g.Purges) }},
	{"fills_total", "local", false, func(g *node.GroupStats) float64 { return u(g.FillsLocal) }},
	{"fills_total", "owner", false, func(g *node.GroupStats) float64 { return u(g.FillsOwner) }},
	{"fills_total", "fallback", false, func(g *node.GroupStats) float64 { return u(g.FillsFallback) }},
	{"fills_total", "served", false, func(g *node.GroupStats) float64 { return u(g.FillsServed) }},
	{"owner_errors_total", "transport", false, func(g *node.GroupStats) float64 { return u(g.OwnerErrors.Transport) }},
	{"owner_errors_total", "timeout", false, func(g *node.GroupStats) float64 { return u(g.OwnerErrors.Timeout) }},
	{"owner_errors_total", "refused", false, func(g *node.GroupStats) float64 { return u(g.OwnerErrors.Refused) }},
	{"owner_errors_total", "owner", false, func(g *node.GroupStats) float64 { return u(g.OwnerErrors.Owner) }},
	{"expiry_events_total", "early_refresh", false, func(g *node.GroupStats) float64 { return u(g.EarlyRefreshes) }},
	{"expiry_events_total", "negative_hit", false, func(g *node.GroupStats) float64 { return u(g.NegativeHits) }},
	{"expiry_events_total", "stale_served", false, func(g *node.GroupStats) float64 { return u(g.StaleServed) }},
	{"sampler_checks_total", "within", false, func(g *node.GroupStats) float64 { return u(g.Sampler.Checks - g.Sampler.BeyondBound) }},
	{"sampler_checks_total", "beyond", false, func(g *node.GroupStats) float64 { return u(g.Sampler.BeyondBound) }},
	{"sampler_superseded_total", "", false, func(g *node.GroupStats) float64 { return u(g.Sampler.Superseded) }},
	{"sampler_dropped_total", "", false, func(g *node.GroupStats) float64 { return u(g.Sampler.Dropped) }},
	{"sampler_nines", "", true, func(g *node.GroupStats) float64 { return g.Sampler.Nines() }},
	{"versions_refused_total", "", false, func(g *node.GroupStats) float64 { return u(g.VersionsRefused) }},
	{"stale_fast_fails_total", "", false, func(g *node.GroupStats) float64 { return u(g.StaleFastFails) }},
	{"local_floors", "", true, func(g *node.GroupStats) float64 { return float64(g.Local.Floors) }},
	{"local_floors_folded_total", "", false, func(g *node.GroupStats) float64 { return u(g.Local.FloorsFolded) }},
	{"local_sets_total", "stored", false, func(g *node.GroupStats) float64 { return u(g.Local.SetsStored) }},
	{"local_sets_total", "rejected", false, func(g *node.GroupStats) float64 { return u(g.Local.SetsRejected) }},
	{"local_keys_added_total", "", false, func(g *node.GroupStats) float64 { return u(g.Local.KeysAdded) }},
	{"local_keys_evicted_total", "", false, func(g *node.GroupStats) float64 { return u(g.Local.KeysEvicted) }},
	{"local_added_bytes_total", "", false, func(g *node.GroupStats) float64 { return u(g.Local.CostAdded) }},
	{"local_evicted_bytes_total", "", false, func(g *node.GroupStats) float64 { return u(g.Local.CostEvicted) }},
}

// nodeSamples are read from node.Stats.
var nodeSamples = []sample[node.Stats]{
	{"members", "", true, func(s *node.Stats) float64 { return float64(s.Members) }},
	{"trusted", "", true, func(s *node.Stats) float64 { return b2f(s.Trusted) }},
	{"last_heard_seconds", "", true, func(s *node.Stats) float64 { return s.LastHeard.Seconds() }},
	{"degraded_transitions_total", "", false, func(s *node.Stats) float64 { return u(s.Cluster.DegradedTransition) }},
	{"gossip_gaps_detected_total", "", false, func(s *node.Stats) float64 { return u(s.Cluster.GapsDetected) }},
	{"gossip_repaired_total", "", false, func(s *node.Stats) float64 { return u(s.Cluster.Repaired) }},
	{"gossip_unrepairable_total", "", false, func(s *node.Stats) float64 { return u(s.Cluster.Unrepairable) }},
	{"gossip_pending_gaps", "", true, func(s *node.Stats) float64 { return float64(s.Cluster.PendingGaps) }},
	{"gossip_published_total", "", false, func(s *node.Stats) float64 { return u(s.Cluster.Published) }},
	{"gossip_received_total", "", false, func(s *node.Stats) float64 { return u(s.Cluster.Received) }},
	{"gossip_duplicates_total", "", false, func(s *node.Stats) float64 { return u(s.Cluster.Duplicates) }},
	{"gossip_messages_total", "sent", false, func(s *node.Stats) float64 { return u(s.Cluster.MessagesSent) }},
	{"gossip_messages_total", "received", false, func(s *node.Stats) float64 { return u(s.Cluster.MessagesReceived) }},
	{"gossip_decode_errors_total", "", false, func(s *node.Stats) float64 { return u(s.Cluster.DecodeErrors) }},
	{"gossip_rejoins_total", "", false, func(s *node.Stats) float64 { return u(s.Cluster.Rejoins) }},
	{"fill_server_events_total", "conn", false, func(s *node.Stats) float64 { return u(s.FillServer.Conns) }},
	{"fill_server_events_total", "request", false, func(s *node.Stats) float64 { return u(s.FillServer.Requests) }},
	{"fill_server_events_total", "refused_auth", false, func(s *node.Stats) float64 { return u(s.FillServer.RefusedAuth) }},
	{"fill_server_events_total", "refused_replay", false, func(s *node.Stats) float64 { return u(s.FillServer.RefusedReplay) }},
	{"fill_server_events_total", "refused_member", false, func(s *node.Stats) float64 { return u(s.FillServer.RefusedMember) }},
	{"fill_server_events_total", "error", false, func(s *node.Stats) float64 { return u(s.FillServer.Errors) }},
	{"fill_server_events_total", "decode_error", false, func(s *node.Stats) float64 { return u(s.FillServer.DecodeErrors) }},
	{"fill_server_events_total", "refused_target", false, func(s *node.Stats) float64 { return u(s.FillServer.RefusedTarget) }},
	{"fill_server_events_total", "refused_conns", false, func(s *node.Stats) float64 { return u(s.FillServer.RefusedConns) }},
	{"fill_server_events_total", "evicted", false, func(s *node.Stats) float64 { return u(s.FillServer.Evicted) }},
	{"fill_server_events_total", "idle_closed", false, func(s *node.Stats) float64 { return u(s.FillServer.IdleClosed) }},
	{"gossip_rejected_total", "", false, func(s *node.Stats) float64 { return u(s.Cluster.Rejected) }},
	{"gossip_streams_refused_total", "", false, func(s *node.Stats) float64 { return u(s.Cluster.StreamsRefused) }},
	{"gossip_streams_cut_total", "", false, func(s *node.Stats) float64 { return u(s.Cluster.StreamsCut) }},
	{"gossip_memberlist_errors_total", "", false, func(s *node.Stats) float64 { return u(s.Cluster.MemberlistErrors) }},
	{"fill_client_events_total", "fill", false, func(s *node.Stats) float64 { return u(s.FillClient.Fills) }},
	{"fill_client_events_total", "dial", false, func(s *node.Stats) float64 { return u(s.FillClient.Dials) }},
	{"fill_client_events_total", "reused", false, func(s *node.Stats) float64 { return u(s.FillClient.Reused) }},
	{"fill_client_events_total", "retry", false, func(s *node.Stats) float64 { return u(s.FillClient.Retries) }},
	{"fill_client_events_total", "dial_error", false, func(s *node.Stats) float64 { return u(s.FillClient.DialErrors) }},
	{"fill_client_events_total", "timeout", false, func(s *node.Stats) float64 { return u(s.FillClient.TimeoutErrors) }},
	{"fill_client_events_total", "io_error", false, func(s *node.Stats) float64 { return u(s.FillClient.IOErrors) }},
	{"fill_client_events_total", "decode_error", false, func(s *node.Stats) float64 { return u(s.FillClient.DecodeErrors) }},
	{"fill_client_events_total", "auth_error", false, func(s *node.Stats) float64 { return u(s.FillClient.AuthErrors) }},
	{"fill_client_events_total", "handshake", false, func(s *node.Stats) float64 { return u(s.FillClient.Handshakes) }},
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// descs are the families' descriptions. They depend only on the namespace,
// so a Metrics builds them once.
type descs struct {
	order  []*prometheus.Desc
	byName map[string]*prometheus.Desc
	build  *prometheus.Desc // nearcache_build_info
}

func newDescs(ns string) *descs {
	d := &descs{byName: make(map[string]*prometheus.Desc, len(families))}
	for _, f := range families {
		x := prometheus.NewDesc(prometheus.BuildFQName(ns, "", f.name), f.help, f.labels, nil)
		d.order = append(d.order, x)
		d.byName[f.name] = x
	}
	d.build = prometheus.NewDesc(prometheus.BuildFQName(ns, "", "build_info"),
		"Always 1; its labels say which nearcache the node runs: version (nearcache's module version), revision (VCS commit, -dirty when built from a modified work tree), go_version.",
		[]string{"version", "revision", "go_version"}, nil)
	return d
}

func (d *descs) describe(ch chan<- *prometheus.Desc) {
	for _, x := range d.order {
		ch <- x
	}
	ch <- d.build
}

// emit sends every sample of s, labels first with the given prefix labels.
func emit[S any](ch chan<- prometheus.Metric, d *descs, samples []sample[S], s *S, prefix ...string) {
	for _, m := range samples {
		typ := prometheus.CounterValue
		if m.gauge {
			typ = prometheus.GaugeValue
		}
		labels := prefix
		if m.label != "" {
			labels = append(append(make([]string, 0, len(prefix)+1), prefix...), m.label)
		}
		ch <- prometheus.MustNewConstMetric(d.byName[m.family], typ, m.value(s), labels...)
	}
}

// attachment is what one Attach registers: a single collector holding the
// snapshot metrics and both histograms, so registration is all or nothing.
type attachment struct {
	descs *descs
	build prometheus.Metric // nearcache_build_info, fixed for the process
	load  *prometheus.HistogramVec
	prop  *prometheus.HistogramVec

	// mu guards stats and detached; Collect read-holds it while stats runs.
	mu       sync.RWMutex
	stats    func() node.Stats
	detached bool
}

var _ prometheus.Collector = (*attachment)(nil)

func newAttachment(d *descs, cfg Config, build BuildInfo, stats func() node.Stats) *attachment {
	return &attachment{
		descs: d,
		build: prometheus.MustNewConstMetric(d.build, prometheus.GaugeValue, 1,
			validLabel(build.Version), validLabel(build.RevisionLabel()), validLabel(build.GoVersion)),
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

	ch <- a.build
	a.collectNode(ch, &s)
	for i := range s.Groups {
		a.collectGroup(ch, &s.Groups[i])
	}
	a.load.Collect(ch)
	a.prop.Collect(ch)
}

func (a *attachment) collectNode(ch chan<- prometheus.Metric, s *node.Stats) {
	emit(ch, a.descs, nodeSamples, s)
}

func (a *attachment) collectGroup(ch chan<- prometheus.Metric, g *node.GroupStats) {
	emit(ch, a.descs, groupSamples, g, validLabel(g.Name))
}
