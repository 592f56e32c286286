// Package local is the in-process store of one typed group: the only importer
// of ristretto. It keeps entries (value, version, expiry) in ristretto and the
// per-key version floors and tag versions outside it, so that a dropped,
// buffered or late ristretto Set can never bring back a value below its floor.
//
// # Floors
//
// A floor f for key k means "versions < f are stale". [Cache.Raise] raises it
// and drops a cached entry below it; [Cache.Set] refuses an entry below it
// ([Stale]). Because ristretto's Set is asynchronous, a Set that passed the
// floor check can land after the Raise that should have dropped it. Get
// therefore checks too, cheaply: keys hash into 4096 buckets, each with an
// atomic epoch that Raise bumps after raising the floor. An entry records its
// bucket and the epoch it was validated at (read before the floor); Get
// compares one atomic load and looks the floor up only on mismatch.
//
// Exact floors live in 64 mutex-guarded map shards. They are forgotten when
// not raised for FloorRetention. If MaxFloors are held before that, the oldest
// is folded into its bucket's coarse floor (max of the folded versions, also
// kept for FloorRetention); a Set below only a coarse floor returns [Fenced]
// (the value may be current, it is just not cached) and Get refuses it.
//
// Why forgetting a floor after FloorRetention is safe: the node guarantees
// that (a) no fill older than its LoadTimeout is stored, (b) every node
// applies an invalidation, or stops trusting its cache, within MaxStaleness,
// and it validates FloorRetention > both; and (c) the source of truth never
// returns a version older than one it already acknowledged. So FloorRetention
// after the last Raise(k, v), every fill of k that could carry a version < v
// has finished or been discarded by (a), and every load that starts later
// reads >= v by (c). What remains is an entry below v already in ristretto: a
// late buffered Set that landed after Raise dropped the old entry. That one
// must not revive when the floor goes, so each floor remembers the bucket
// epoch its Raise produced, and forgetting it records that epoch as the
// bucket's "forgotten" mark: Get refuses an entry last validated before the
// mark, since it can no longer be checked against the floor it predates. The
// price is a spurious miss for an entry not read between a Raise in its bucket
// (1/4096 of keys) and that floor's forgetting.
//
// # Tags
//
// [Cache.BumpTag] invalidates every entry that captured an older version of a
// tag (dependent keys). Set refuses an entry whose captured tag versions are
// behind ([Stale]); Get re-checks a tagged entry only when the global tag
// epoch moved since it was validated. Untagged entries never pay.
//
// Tag records are never forgotten by age, since an entry without a TTL could
// still hold an old captured version. At most MaxFloors are held: beyond that
// the least recently bumped record is dropped and the tag base is raised to
// its version. A tag without a record reads as the base (0 until a record is
// dropped), so a tag's version never goes down and no entry or in-flight fill
// that captured an old version can become valid again; the cost is that
// entries of other record-less tags, captured at an older base, miss until refilled.
//
// # Generations
//
// [Cache.Purge] moves an atomic generation on before clearing ristretto;
// entries record the generation at Set, and Get refuses older ones, so Sets
// still buffered (or racing the Clear) cannot bring old entries back.
//
// # Superseded
//
// Set returns [Superseded] when a valid cached entry of the key has a higher
// version. Two Sets can both pass that check and be buffered in either order;
// ristretto's ShouldUpdate hook (run under its shard lock when an item is
// applied) then keeps the higher valid version, so the lower one never
// replaces it. What remains: the losing Set still returned [Stored]. An entry
// admitted while a newer version exists at the source is bounded like any
// other cached value: the invalidation that announced the newer version
// raises the floor and drops it.
//
// # Concurrency
//
// All methods are safe for concurrent use. [Cache.Close] is idempotent and
// safe while any other method runs: ristretto panics on a Set racing its
// Close, so Set, Delete, Raise, Purge and Wait read-hold an RWMutex that Close
// write-holds. Get, the hot path, takes no lock: it counts itself in (a
// striped "enters" counter), then checks an atomic closed flag, and counts
// itself out as a hit or a miss; Close sets the flag, then waits until every
// stripe's hits+misses equal its enters before closing ristretto (whose Get
// pushes to a policy channel that its Close closes). Those counters are also
// the Hits and Misses of [Cache.Stats], so the guard costs two uncontended
// atomic adds on one line. After Close, Get misses and Set returns [Closed];
// floors and tags stay usable.
package local
