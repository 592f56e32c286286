// Package demo runs the `nearcache demo`: a small nearcache cluster over an
// embedded SQLite source of truth, hammered by a seeded read/write workload,
// and then the same workload on naive per-instance caches, so that the two can
// be compared side by side.
//
// The point it makes: with versioned invalidations acknowledged by every
// member ([node.AckAll]), no read that starts after a write's invalidation
// returned sees an older version, on any node; per-instance caches without
// cross-instance invalidation serve such stale reads until their TTL expires.
//
// A read is stale when it STARTED after an invalidation of a newer version of
// its key RETURNED to its writer (for the naive caches: after the writer
// dropped its own copy) and it still returned an older version. The check is
// exact per key: every returned invalidation is kept with its return time,
// and reads judged while a writer was still recording its invalidation are
// judged again when it lands.
//
// # Usage
//
//	res, err := demo.Run(ctx, demo.Config{Out: os.Stdout})
//
// [Run] owns everything it starts: nodes, database and temporary directory are
// closed and removed before it returns, and no goroutine of its own survives.
package demo
