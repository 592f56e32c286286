// Package trust is the node's trust state machine (G5): whether cached
// values may be served, and what must happen when that changes. It is pure,
// in the manner of etcd/raft's RawNode: no goroutines, no clock, no locks.
// The caller (the node's watchdog) feeds it the time and the cluster's
// health with [Machine.Step] and carries out the [Actions] it returns; tests
// step it directly.
//
// The rules:
//
//   - A good verdict renews the lease: cached values may be served until
//     the step's time plus the lease.
//   - A machine that is not trusted earns trust only once every live peer
//     has spoken to the node (a batch or a heartbeat) since it lost trust or
//     started: a peer sends those only to members it counts as alive, and
//     one that still takes this node for dead (it restarted, it was frozen)
//     would neither send it invalidations nor wait for its acknowledgement.
//     Earning trust purges every group: what was missed cannot linger.
//   - A lease that ran out before a step renewed it means the process
//     stalled (SIGSTOP, a VM pause, starvation): what it heard on waking may
//     be old (socket buffers) and its peers may have taken it for dead. It
//     loses trust and earns it back only after a state exchange of its own
//     with every live peer (a resync, [Actions.Resync], reported back with
//     [Machine.Resynced]) and after every one has spoken since.
package trust
