// Package server is the HTTP face of one `nearcache node` process: a JSON API
// over a node's groups, Prometheus metrics, health and readiness probes, and
// a self-refreshing status page at /debug/cluster.
//
// # Usage
//
// cmd/nearcache fills a [RunConfig] from flags and environment variables and
// calls [Run], which opens the source of truth ([OpenSource]: SQLite or
// PostgreSQL), starts the node, creates the "items" group over the source,
// and serves HTTP until its context ends. [New] builds just the handler
// around a running node, for tests and for services that want the same API.
//
// # HTTP API
//
//	GET  /v1/groups/{group}/keys/{key}?mode=cached|verified|authoritative
//	     -> 200 {"key", "value", "version"}
//	PUT  /v1/groups/{group}/keys/{key}   body {"value": "..."}
//	     writes the source (version+1, or insert at 1), then invalidates with
//	     AckAll bounded by Config.AckTimeout
//	     -> 200 {"key", "version"[, "not_acknowledged": [names]]}
//	POST /v1/groups/{group}/keys/{key}/invalidate?version=N[&ack=all]
//	     -> 200 {"key", "version"[, "not_acknowledged": [names]]}
//	GET  /metrics, /healthz, /readyz, /debug/cluster, /debug/cluster.json[?peers=1]
//
// A node run by [Run] advertises its HTTP port in its node metadata
// ([EncodeMeta]); with ?peers=1 the status document carries every live
// member's own figures, asked from its API, so one page shows how loads and
// key ownership are spread over the cluster.
//
// Errors are JSON, {"error": "..."}: 400 for bad input (mode, version, key
// length, JSON body), 404 for an unknown group or a key the source does not
// hold, 405 for a wrong method, 413 for a body over 1 MiB, 502 when the
// source fails, 503 while the node is closed, degraded (DegradedFail),
// overloaded or the source lags an invalidation.
//
// A write whose invalidation was not acknowledged by every live member within
// AckTimeout still answers 200: the write committed and this node dropped its
// copy (read-your-writes holds here); "not_acknowledged" names the members
// that may serve the old value until they apply it (within the propagation
// bound, or MaxStaleness if they are cut off).
//
// # Concurrency
//
// A [Server] is safe for concurrent use; it holds no state of its own besides
// the propagation samples of its [Observer]. It starts no goroutine that
// outlives a request.
package server
