// Package node is nearcache's public API: a [Node] is one instance of a
// horizontally scaled service, holding typed [Group] caches that stay honest
// through versioned invalidations gossiped between the instances.
//
// # Usage
//
// Start a node on every instance, create the same groups on each, read through
// them, and after every write to the source of truth invalidate with the new
// version:
//
//	n, err := node.Start(ctx, node.Config{Name: "api-7", Join: []string{"api-0.api:7946"}, SecretKey: key})
//	if err != nil { ... }
//	defer n.Close(context.Background())
//	users, err := node.NewGroup(n, "users", node.GroupConfig[User]{Loader: usersFromDB, TTL: time.Minute})
//	u, err := users.Get(ctx, "123")                       // cached: a hint
//	u, err = users.Get(ctx, "123", node.Authoritative())  // the source itself: for decisions
//	err = users.Invalidate(ctx, "123", newVersion)        // after the write committed
//
// The safe path: serve pages and lists from plain reads; make decisions that
// move money or grant access on [Authoritative] reads; call
// [Group.Invalidate] after every committed write, with the version the
// source gave the row. When the source has no versions, use [ClockVersions].
//
// # Guarantees
//
// Every value carries a version; every key has a version floor raised by
// invalidations; no value below its floor is stored or served, whatever order
// messages and fills arrive in (G1, G8). Invalidate drops the local copy before
// it returns (G2); [AckAll] waits for every live member (G7). A node that has
// not heard its peers within Config.MaxStaleness stops serving cached values
// until it has caught up (G5). Concurrent misses of a key on a node share one
// load, run under a context detached from the first caller's.
//
// # Lifecycle
//
// [Start] validates the Config, joins the cluster (retrying in the background
// when no seed answers) and returns a running node. Groups are created with
// [NewGroup] after Start, with the same name and versioning on every node.
// [Node.Close] leaves the cluster, drains loads in flight (at most
// LoadTimeout), and releases the caches; afterwards every call returns
// [ErrClosed]. No goroutine outlives Close.
//
// # Concurrency
//
// Node and Group methods are safe for concurrent use. A cache hit takes no
// lock and allocates nothing. The loader is called at most once per key at a
// time per node; its result is shared. Observer methods are called from load
// and gossip goroutines and must not block.
package node
