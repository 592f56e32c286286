// Package check is nearcache's referee: a [Recorder] keeps a history of
// every write (source commit, invalidation call and return) and every read
// (node, start, end, version returned) with monotonic timestamps, and [Check]
// verifies the history against the guarantees of DESIGN.md with linear sweeps
// per key (no linearizability search: a bounded-stale cache is not
// linearizable). [RunCampaign] drives an in-process cluster on 127.0.0.1 under
// a seeded schedule of faults and checks what it recorded. [RunProcessCampaign]
// (Linux) does the same across processes: `nearcache node` binaries on
// 127.0.0.1 over one SQLite file, driven through their HTTP API, under kill -9
// (of a key's owner and of a non-owner), SIGSTOP for 2s and 30s, restarts with
// the same name and rolling restarts; each process start is an incarnation of
// its own in the history (name@n), so G1 and G2 hold per incarnation. Its
// PostgreSQL mode (ProcessConfig.Postgres) runs the nodes with the change
// feed (`--feed`): writers write to PostgreSQL directly, the feed's holder
// is stopped and killed, and G9 is checked on every read (processpg.go).
// Both are one driver (drive, driver.go: workload, trust poller, schedule of
// calm, fault, convergence check) over two back ends (campaign.go's
// in-process cluster, processrun.go's processes).
//
// The checker is itself tested against broken builds of the library (build
// tags nearcache_nofloor, nearcache_nostalefill, nearcache_nofreshness,
// nearcache_norepair, and nearcache_nologfresh, caught by the PostgreSQL mode:
// TestProcessPostgresBroken): a checker that passes a broken build is not a
// checker.
package check
