// Package metrics exports a nearcache node's measurements to Prometheus.
//
// It is the only package of nearcache that imports client_golang. A
// [*Metrics] implements node.Observer: give it to node.Config.Observer and
// the node calls [Metrics.Attach] on Start and [Metrics.Detach] on Close.
//
// # Usage
//
//	reg := prometheus.NewRegistry()
//	m := metrics.New(reg)
//	n, err := node.Start(ctx, node.Config{..., Observer: m})
//	...
//	if err := m.Err(); err != nil { // registration failed (e.g. a name clash)
//		log.Print(err)
//	}
//	http.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
//
// Metrics registers on the [prometheus.Registerer] it is given, never on the
// global registry. Counters such as gets, invalidations and gossip figures are
// read from the node's Stats snapshot at scrape time by a custom collector
// (the "Prometheus-ignorant" pattern of client_golang's clustermanager
// example), so the cache-hit path never touches Prometheus. Load latency and
// propagation delay are real histograms fed by [Metrics.ObserveLoad] and
// [Metrics.ObservePropagation].
//
// # Several nodes in one process
//
// Every node needs its own Metrics. Two Metrics on two registries coexist.
// Two Metrics on one registry export the same names, so the second one's
// registration fails with a [prometheus.AlreadyRegisteredError] (reported by
// [Metrics.Err]) unless each is given a registerer that adds a distinguishing
// label:
//
//	metrics.New(prometheus.WrapRegistererWith(prometheus.Labels{"node": name}, reg))
//
// In production leave node identity to Prometheus target labels (instance).
//
// # Errors
//
// New and Attach cannot return errors (node.Observer's Attach has no result),
// so a nil Registerer, an invalid [Config] or a failed registration is kept
// and reported by [Metrics.Err]; a Metrics in error exports nothing and its
// methods do nothing. Nothing here panics on bad input.
//
// # Metric names
//
// All names start with the namespace, "nearcache" by default; "group" labels
// the per-group ones:
//
//	nearcache_gets_total{group,result="hit|miss|stale_rejected|bypass|degraded"}  (see below)
//	nearcache_loads_total{group,outcome="ok|error"}
//	nearcache_load_duration_seconds{group}            histogram
//	nearcache_coalesced_waits_total{group}
//	nearcache_invalidations_total{group,direction="sent|received|applied"}
//	nearcache_propagation_delay_seconds{group}        histogram
//	nearcache_purges_total{group}
//	nearcache_local_floors{group}                     gauge
//	nearcache_local_floors_folded_total{group}
//	nearcache_local_sets_total{group,result="stored|rejected"}
//	nearcache_local_keys_added_total{group}, nearcache_local_keys_evicted_total{group}
//	nearcache_local_added_bytes_total{group}, nearcache_local_evicted_bytes_total{group}
//	nearcache_sampler_checks_total{group,result="within|beyond"}, nearcache_sampler_superseded_total{group},
//	nearcache_sampler_dropped_total{group}, nearcache_sampler_nines{group} (gauge)
//	nearcache_fills_total{group,source}, nearcache_owner_errors_total{group,kind},
//	nearcache_expiry_events_total{group,event}, nearcache_versions_refused_total{group},
//	nearcache_stale_fast_fails_total{group}
//	nearcache_members, nearcache_trusted, nearcache_last_heard_seconds  gauges
//	nearcache_degraded_transitions_total
//	nearcache_gossip_gaps_detected_total, nearcache_gossip_repaired_total,
//	nearcache_gossip_unrepairable_total, nearcache_gossip_pending_gaps (gauge),
//	nearcache_gossip_published_total, nearcache_gossip_received_total,
//	nearcache_gossip_duplicates_total, nearcache_gossip_messages_total{direction="sent|received"},
//	nearcache_gossip_decode_errors_total, nearcache_gossip_rejoins_total, and the
//	gossip stream, fill server and fill client counters (their HELP says what)
//	nearcache_build_info{version,revision,go_version}  gauge, always 1
//
// # Build information
//
// nearcache_build_info is registered by [Metrics.Attach], in the one
// collector that exports the node's figures: it exists exactly while a node
// is attached, carries the same labels as everything else the Registerer
// adds (a "node" label when wrapped, see above), and a Metrics in error
// exports neither. Its labels come from runtime/debug.ReadBuildInfo, read
// once by [New] (see [BuildInfo]): version is nearcache's module version,
// revision the VCS commit with "-dirty" when built from a modified work
// tree ("unknown" when the binary does not say), go_version the toolchain.
// `nearcache version` prints the same figures. Join on it to label any
// panel by version, e.g. during a rolling upgrade:
//
//	sum by (version) (rate(nearcache_gets_total[5m]) * on (instance) group_left (version) nearcache_build_info)
//
// # Hit ratio
//
// The results of nearcache_gets_total are not a partition of the Gets:
// hit + miss are the plain cached Gets, each counted once; bypass counts
// Verified and Authoritative reads, degraded the reads while the node did not
// trust its cache; stale_rejected counts the Gets whose load came back below
// the key's version floor (once per Get, however many loads it took), which
// are also counted as miss or bypass. The hit ratio is therefore
//
//	sum by (group) (rate(nearcache_gets_total{result="hit"}[5m]))
//	  / sum by (group) (rate(nearcache_gets_total{result=~"hit|miss"}[5m]))
//
// the status page's figure (hits / (hits + misses)); dividing by every
// result counts a Get refused below its floor, or a bypass read, again. A
// test runs a cluster and checks the dashboard's panel against the status
// page's figure.
//
// # Breaking change: byte counters end in _bytes_total
//
// Counters of bytes follow Prometheus' naming (unit, then _total):
// nearcache_local_cost_added_total and nearcache_local_cost_evicted_total are
// now nearcache_local_added_bytes_total and nearcache_local_evicted_bytes_total
// (same values: the group's Cost, in bytes). Dashboards and alerts that query
// the old names show nothing until updated; the shipped dashboard is.
//
// A Grafana dashboard using these names ships in dashboards/nearcache.json,
// with rows for the consistency sampler (nines, checks, superseded hits,
// hits beyond the bound) and for the change feed. The feed's families
// (nearcache_feed_holder, _lag_bytes, _lag_seconds gauges; _changes_total,
// _transactions_total, _ignored_total, _failovers_total, _reconnects_total
// counters) are exported by the nearcache node binary while its feed runs,
// not by this package; its panels are empty elsewhere. A test checks that
// every metric the dashboard queries is one this package exports or one of
// those, and that every exported one has a panel.
package metrics
