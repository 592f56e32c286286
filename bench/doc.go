// Package bench runs nearcache side by side with what people use instead of
// it, on the same workload, on the same machine, in one run: no cache
// ("none"), a per-instance ristretto cache-aside with a TTL ("local-ttl"), a
// central Redis cache-aside with delete-on-write ("redis"), Redis with
// server-assisted client-side caching ("redis-csc"), golang/groupcache owner
// fills ("groupcache") and nearcache itself ("nearcache").
//
// A [Source] is the source of truth: an embedded SQLite database whose rows
// carry a version column, behind an added per-query latency that stands in
// for a networked database, or a table in a real PostgreSQL reached through
// pgx when [Config.SourceDSN] is set. A [Strategy] is N application instances, each
// with its own cache or client, reading through to the Source. [Run] drives
// every strategy through every [Workload] (seeded, so reproducible) and
// returns one [Result] per pair: read throughput and latency quantiles from a
// log-linear histogram, database queries per second and per hot-key expiry,
// the stale-read rate and staleness quantiles, and heap per instance.
// [WriteTable], [WriteJSON] and [WritePlots] report them.
//
// The Redis strategies need redis-server on PATH (make bench-deps); Run
// starts its own on a free 127.0.0.1 port and stops it by pid. The groupcache
// strategy runs its peers as child processes (package groupcachepeer), whose
// getters read the Source over HTTP from the harness.
//
// Its command line is a binary of its own, so that the nearcache binary does
// not link the harness: go run ./cmd/nearcache-bench --help.
//
// See README.md for the JSON schema and how each figure is measured.
package bench
