package metrics

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nearcache/nearcache/node"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/goleak"
)

// memberlist's Shutdown does not wait for a probe in flight
// (TestHitRatioPanelMatchesStatusPage runs a real cluster): it ends within
// a probe interval, longer than goleak's retries; node's TestMain ignores it too.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("github.com/hashicorp/memberlist.(*Memberlist).probeNode"))
}

// fixedStats is a node snapshot with two groups and a distinct value in
// every field, so a field wired to the wrong metric shows up.
func fixedStats() node.Stats {
	return node.Stats{
		Name:      "n1",
		Trusted:   true,
		Members:   3,
		LastHeard: 1500 * time.Millisecond,
		Cluster: node.ClusterStats{
			Published: 101, Received: 102, Duplicates: 103, GapsDetected: 104,
			Repaired: 105, Unrepairable: 106, PendingGaps: 7, MessagesSent: 108,
			MessagesReceived: 109, DecodeErrors: 110, Rejoins: 111, DegradedTransition: 112,
		},
		Groups: []node.GroupStats{
			{
				Name: "orders", Hits: 1, Misses: 2, StaleRejected: 3, Bypass: 4, Degraded: 5,
				Loads: 6, LoadErrors: 7, Coalesced: 8,
				InvalidationsSent: 9, InvalidationsReceived: 10, InvalidationsApplied: 11, Purges: 12,
				Local: node.LocalStats{Floors: 13, FloorsFolded: 14, SetsStored: 15, SetsRejected: 16,
					KeysAdded: 17, KeysEvicted: 18, CostAdded: 19, CostEvicted: 20},
			},
			{
				Name: "users", Hits: 21, Misses: 22, StaleRejected: 23, Bypass: 24, Degraded: 25,
				Loads: 30, LoadErrors: 4, Coalesced: 28,
				InvalidationsSent: 29, InvalidationsReceived: 30, InvalidationsApplied: 31, Purges: 32,
				FillsLocal: 41, FillsOwner: 42, FillsFallback: 43, FillsServed: 44,
				OwnerErrors:    node.OwnerErrors{Transport: 45, Timeout: 46, Refused: 47, Owner: 48},
				EarlyRefreshes: 49, NegativeHits: 50, StaleServed: 51,
				Local: node.LocalStats{Floors: 33, FloorsFolded: 34, SetsStored: 35, SetsRejected: 36,
					KeysAdded: 37, KeysEvicted: 38, CostAdded: 39, CostEvicted: 40},
			},
		},
	}
}

// attached returns a Metrics attached to a new pedantic registry with
// fixedStats, detached at cleanup.
func attached(t *testing.T) (*Metrics, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	m := New(reg)
	m.Attach(fixedStats)
	if err := m.Err(); err != nil {
		t.Fatalf("Attach: Err() = %v", err)
	}
	t.Cleanup(m.Detach)
	return m, reg
}

func TestSnapshotMetrics(t *testing.T) {
	tests := []struct {
		name string
		want string
	}{
		{"nearcache_gets_total", `
# HELP nearcache_gets_total Gets by result: hit (served from the local cache), miss (a plain Get that loaded or joined a load), bypass (Verified or Authoritative read), degraded (read while the node did not trust its cache). Not a partition: stale_rejected counts Gets whose load came back below the key's version floor and was refused, once per Get, also counted as miss or bypass. Hit ratio = hit / (hit + miss).
# TYPE nearcache_gets_total counter
nearcache_gets_total{group="orders",result="bypass"} 4
nearcache_gets_total{group="orders",result="degraded"} 5
nearcache_gets_total{group="orders",result="hit"} 1
nearcache_gets_total{group="orders",result="miss"} 2
nearcache_gets_total{group="orders",result="stale_rejected"} 3
nearcache_gets_total{group="users",result="bypass"} 24
nearcache_gets_total{group="users",result="degraded"} 25
nearcache_gets_total{group="users",result="hit"} 21
nearcache_gets_total{group="users",result="miss"} 22
nearcache_gets_total{group="users",result="stale_rejected"} 23
`},
		// orders has more errors than loads: ok must clamp at 0, not wrap.
		{"nearcache_loads_total", `
# HELP nearcache_loads_total Loader calls by outcome.
# TYPE nearcache_loads_total counter
nearcache_loads_total{group="orders",outcome="error"} 7
nearcache_loads_total{group="orders",outcome="ok"} 0
nearcache_loads_total{group="users",outcome="error"} 4
nearcache_loads_total{group="users",outcome="ok"} 26
`},
		{"nearcache_invalidations_total", `
# HELP nearcache_invalidations_total Invalidations by direction: sent (published by this node), received (from other nodes), applied (received ones that raised a floor or bumped a tag).
# TYPE nearcache_invalidations_total counter
nearcache_invalidations_total{direction="applied",group="orders"} 11
nearcache_invalidations_total{direction="applied",group="users"} 31
nearcache_invalidations_total{direction="received",group="orders"} 10
nearcache_invalidations_total{direction="received",group="users"} 30
nearcache_invalidations_total{direction="sent",group="orders"} 9
nearcache_invalidations_total{direction="sent",group="users"} 29
`},
		{"nearcache_local_floors", `
# HELP nearcache_local_floors Version floors held by the local store.
# TYPE nearcache_local_floors gauge
nearcache_local_floors{group="orders"} 13
nearcache_local_floors{group="users"} 33
`},
		{"nearcache_local_sets_total", `
# HELP nearcache_local_sets_total Local store sets by result: stored, or rejected (by floor, tag, supersession or the store).
# TYPE nearcache_local_sets_total counter
nearcache_local_sets_total{group="orders",result="rejected"} 16
nearcache_local_sets_total{group="orders",result="stored"} 15
nearcache_local_sets_total{group="users",result="rejected"} 36
nearcache_local_sets_total{group="users",result="stored"} 35
`},
		{"nearcache_local_evicted_bytes_total", `
# HELP nearcache_local_evicted_bytes_total Bytes evicted from the local store (their ristretto cost: GroupConfig.Cost, by default key + value + 64).
# TYPE nearcache_local_evicted_bytes_total counter
nearcache_local_evicted_bytes_total{group="orders"} 20
nearcache_local_evicted_bytes_total{group="users"} 40
`},
		{"nearcache_trusted", `
# HELP nearcache_trusted 1 while the node trusts its cache, 0 while degraded (it has not heard from the cluster within MaxStaleness).
# TYPE nearcache_trusted gauge
nearcache_trusted 1
`},
		{"nearcache_last_heard_seconds", `
# HELP nearcache_last_heard_seconds Seconds since the least recently heard live peer was heard on the invalidation stream (0 without peers).
# TYPE nearcache_last_heard_seconds gauge
nearcache_last_heard_seconds 1.5
`},
		{"nearcache_gossip_messages_total", `
# HELP nearcache_gossip_messages_total Gossip messages by direction.
# TYPE nearcache_gossip_messages_total counter
nearcache_gossip_messages_total{direction="received"} 109
nearcache_gossip_messages_total{direction="sent"} 108
`},
		{"nearcache_gossip_pending_gaps", `
# HELP nearcache_gossip_pending_gaps Gaps not yet repaired.
# TYPE nearcache_gossip_pending_gaps gauge
nearcache_gossip_pending_gaps 7
`},
		{"nearcache_degraded_transitions_total", `
# HELP nearcache_degraded_transitions_total Times the node stopped trusting its cache.
# TYPE nearcache_degraded_transitions_total counter
nearcache_degraded_transitions_total 112
`},
	}
	_, reg := attached(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := testutil.GatherAndCompare(reg, strings.NewReader(tt.want), tt.name); err != nil {
				t.Error(err)
			}
		})
	}
}

// TestEverySnapshotField checks the scalar node metrics one by one, so a
// field wired to the wrong metric (or not at all) is caught.
func TestEverySnapshotField(t *testing.T) {
	tests := []struct {
		name string
		want float64
	}{
		{"nearcache_members", 3},
		{"nearcache_gossip_gaps_detected_total", 104},
		{"nearcache_gossip_repaired_total", 105},
		{"nearcache_gossip_unrepairable_total", 106},
		{"nearcache_gossip_published_total", 101},
		{"nearcache_gossip_received_total", 102},
		{"nearcache_gossip_duplicates_total", 103},
		{"nearcache_gossip_decode_errors_total", 110},
		{"nearcache_gossip_rejoins_total", 111},
	}
	_, reg := attached(t)
	got := gatherValues(t, reg)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if v, ok := got[tt.name]; !ok || v != tt.want {
				t.Errorf("%s = %v (present %v), want %v", tt.name, v, ok, tt.want)
			}
		})
	}
	// Per-group single-label metrics, for group "users".
	perGroup := []struct {
		name string
		want float64
	}{
		{"nearcache_coalesced_waits_total", 28},
		{"nearcache_purges_total", 32},
		{"nearcache_local_floors_folded_total", 34},
		{"nearcache_local_keys_added_total", 37},
		{"nearcache_local_keys_evicted_total", 38},
		{"nearcache_local_added_bytes_total", 39},
	}
	labelled := map[string]float64{
		`nearcache_fills_total{group="users",source="local"}`:                41,
		`nearcache_fills_total{group="users",source="owner"}`:                42,
		`nearcache_fills_total{group="users",source="fallback"}`:             43,
		`nearcache_fills_total{group="users",source="served"}`:               44,
		`nearcache_owner_errors_total{group="users",kind="transport"}`:       45,
		`nearcache_owner_errors_total{group="users",kind="timeout"}`:         46,
		`nearcache_owner_errors_total{group="users",kind="refused"}`:         47,
		`nearcache_owner_errors_total{group="users",kind="owner"}`:           48,
		`nearcache_expiry_events_total{event="early_refresh",group="users"}`: 49,
		`nearcache_expiry_events_total{event="negative_hit",group="users"}`:  50,
		`nearcache_expiry_events_total{event="stale_served",group="users"}`:  51,
	}
	for key, want := range labelled {
		if v, ok := got[key]; !ok || v != want {
			t.Errorf("%s = %v (present %v), want %v", key, v, ok, want)
		}
	}
	for _, tt := range perGroup {
		t.Run(tt.name, func(t *testing.T) {
			key := tt.name + `{group="users"}`
			if v, ok := got[key]; !ok || v != tt.want {
				t.Errorf("%s = %v (present %v), want %v", key, v, ok, tt.want)
			}
		})
	}
}

// gatherValues flattens counters and gauges to "name{labels}" -> value.
func gatherValues(t *testing.T, g prometheus.Gatherer) map[string]float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatalf("Gather: %v", err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			key := mf.GetName()
			if len(m.GetLabel()) > 0 {
				var parts []string
				for _, l := range m.GetLabel() {
					parts = append(parts, l.GetName()+`="`+l.GetValue()+`"`)
				}
				key += "{" + strings.Join(parts, ",") + "}"
			}
			switch {
			case m.Counter != nil:
				out[key] = m.GetCounter().GetValue()
			case m.Gauge != nil:
				out[key] = m.GetGauge().GetValue()
			}
		}
	}
	return out
}

func TestUntrustedIsZero(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	m := New(reg)
	m.Attach(func() node.Stats { return node.Stats{Trusted: false} })
	defer m.Detach()
	const want = `
# HELP nearcache_trusted 1 while the node trusts its cache, 0 while degraded (it has not heard from the cluster within MaxStaleness).
# TYPE nearcache_trusted gauge
nearcache_trusted 0
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "nearcache_trusted"); err != nil {
		t.Error(err)
	}
}

func TestHistograms(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	m := NewWithConfig(reg, Config{
		LoadBuckets:        []float64{0.01, 0.1},
		PropagationBuckets: []float64{0.001, 0.01},
	})
	m.Attach(fixedStats)
	defer m.Detach()

	m.ObserveLoad("users", 5*time.Millisecond, nil)
	m.ObserveLoad("users", 50*time.Millisecond, errors.New("boom"))
	m.ObserveLoad("orders", time.Second, nil)
	m.ObservePropagation("users", 500*time.Microsecond)
	m.ObservePropagation("users", -time.Second) // skewed clock: counted as 0

	const want = `
# HELP nearcache_load_duration_seconds Duration of loader calls, successful or not.
# TYPE nearcache_load_duration_seconds histogram
nearcache_load_duration_seconds_bucket{group="orders",le="0.01"} 0
nearcache_load_duration_seconds_bucket{group="orders",le="0.1"} 0
nearcache_load_duration_seconds_bucket{group="orders",le="+Inf"} 1
nearcache_load_duration_seconds_sum{group="orders"} 1
nearcache_load_duration_seconds_count{group="orders"} 1
nearcache_load_duration_seconds_bucket{group="users",le="0.01"} 1
nearcache_load_duration_seconds_bucket{group="users",le="0.1"} 2
nearcache_load_duration_seconds_bucket{group="users",le="+Inf"} 2
nearcache_load_duration_seconds_sum{group="users"} 0.055
nearcache_load_duration_seconds_count{group="users"} 2
# HELP nearcache_propagation_delay_seconds Delay from an invalidation's publication at its origin to its application here (origin's wall clock; meaningful on synced clocks).
# TYPE nearcache_propagation_delay_seconds histogram
nearcache_propagation_delay_seconds_bucket{group="users",le="0.001"} 2
nearcache_propagation_delay_seconds_bucket{group="users",le="0.01"} 2
nearcache_propagation_delay_seconds_bucket{group="users",le="+Inf"} 2
nearcache_propagation_delay_seconds_sum{group="users"} 0.0005
nearcache_propagation_delay_seconds_count{group="users"} 2
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want),
		"nearcache_load_duration_seconds", "nearcache_propagation_delay_seconds"); err != nil {
		t.Error(err)
	}
}

func TestDefaultBucketsUsed(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	m := New(reg)
	m.Attach(fixedStats)
	defer m.Detach()
	m.ObserveLoad("g", time.Millisecond, nil)
	m.ObservePropagation("g", time.Millisecond)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int{
		"nearcache_load_duration_seconds":     len(DefaultLoadBuckets()),
		"nearcache_propagation_delay_seconds": len(DefaultPropagationBuckets()),
	}
	for _, mf := range mfs {
		if n, ok := want[mf.GetName()]; ok {
			if got := len(mf.GetMetric()[0].GetHistogram().GetBucket()); got != n {
				t.Errorf("%s has %d buckets, want %d", mf.GetName(), got, n)
			}
			delete(want, mf.GetName())
		}
	}
	if len(want) != 0 {
		t.Errorf("histograms missing: %v", want)
	}
}

func TestConstructionErrors(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	tests := []struct {
		name    string
		reg     prometheus.Registerer
		cfg     Config
		wantErr string
	}{
		{"nil registerer", nil, Config{}, "metrics: Registerer is nil"},
		{"bad namespace", reg, Config{Namespace: "near-cache"}, `metrics: Namespace "near-cache" is not a valid metric name prefix`},
		{"unsorted load buckets", reg, Config{LoadBuckets: []float64{1, 0.5}}, "metrics: LoadBuckets must be strictly increasing"},
		{"duplicate propagation buckets", reg, Config{PropagationBuckets: []float64{1, 1}}, "metrics: PropagationBuckets must be strictly increasing"},
		{"valid", reg, Config{Namespace: "svc_cache", LoadBuckets: []float64{1, 2}}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := NewWithConfig(tt.reg, tt.cfg)
			// None of these may panic, whatever the state.
			m.Attach(fixedStats)
			m.ObserveLoad("g", time.Millisecond, nil)
			m.ObservePropagation("g", time.Millisecond)
			defer m.Detach()
			got := ""
			if err := m.Err(); err != nil {
				got = err.Error()
			}
			if got != tt.wantErr {
				t.Errorf("Err() = %q, want %q", got, tt.wantErr)
			}
		})
	}
	if err := New(nil).Err(); !errors.Is(err, ErrNilRegisterer) {
		t.Errorf("New(nil).Err() = %v, want ErrNilRegisterer", err)
	}
}

func TestNamespace(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	m := NewWithConfig(reg, Config{Namespace: "svc"})
	m.Attach(fixedStats)
	defer m.Detach()
	m.ObserveLoad("g", time.Millisecond, nil)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	if len(mfs) == 0 {
		t.Fatal("nothing gathered")
	}
	for _, mf := range mfs {
		if !strings.HasPrefix(mf.GetName(), "svc_") {
			t.Errorf("metric %s ignores Namespace", mf.GetName())
		}
	}
}

// TestNoStatsAfterDetach checks the node.Observer promise: once Detach has
// returned, stats is never called, even through a collector a scrape got
// before Unregister, and Detach waits for a stats call already running.
// TestConcurrentUse runs observations, scrapes and attach/detach cycles
// together; it is meant for -race.
// TestLint runs promlint (naming conventions: _total on counters, base
// units, help text) over everything this package exports.
func TestLint(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	m := New(reg)
	m.Attach(fixedStats)
	defer m.Detach()
	m.ObserveLoad("users", time.Millisecond, nil)
	m.ObservePropagation("users", time.Millisecond)
	problems, err := testutil.GatherAndLint(reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("promlint: %s: %s", p.Metric, p.Text)
	}
}

// TestInvalidUTF8Group: client_golang panics on label values that are not
// UTF-8; a group name must crash neither a load nor a scrape.
func TestInvalidUTF8Group(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	m := New(reg)
	m.Attach(func() node.Stats {
		return node.Stats{Groups: []node.GroupStats{{Name: "bad\xff", Hits: 1}}}
	})
	defer m.Detach()
	m.ObserveLoad("bad\xff", time.Millisecond, nil)
	m.ObservePropagation("bad\xff", time.Millisecond)
	got := gatherValues(t, reg) // fails on a collector panic
	if v := got["nearcache_gets_total{group=\"bad\uFFFD\",result=\"hit\"}"]; v != 1 {
		t.Errorf("hits of the sanitised group = %v, want 1", v)
	}
}
