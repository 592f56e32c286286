package node

import (
	"context"
	"fmt"

	"github.com/nearcache/nearcache/gossip"
)

// KeyVersion is one key of a batch invalidation and the version committed
// for it (0 in a ClockVersions group: the node stamps it).
type KeyVersion struct {
	Key     string
	Version uint64
}

// InvalidateMany is [Group.Invalidate] for several keys at once: every key
// is invalidated here before it returns, and the batch goes out as one
// publish, in as few gossip packets as fit (and, with [AckAll], one wait for
// every member's acknowledgement). A bad key or version fails the whole call
// before anything is applied.
func (g *Group[V]) InvalidateMany(ctx context.Context, keys []KeyVersion, opts ...WriteOption) error {
	if g.n.closed.Load() {
		return ErrClosed
	}
	invs := make([]gossip.Invalidation, len(keys))
	for i, kv := range keys {
		if err := validKey("key", kv.Key); err != nil {
			return fmt.Errorf("node: InvalidateMany: keys[%d]: %w", i, err)
		}
		v, err := g.version("InvalidateMany", kv.Version)
		if err != nil {
			return fmt.Errorf("node: InvalidateMany: keys[%d] (%q): %w", i, kv.Key, err)
		}
		invs[i] = gossip.Invalidation{Group: g.name, Kind: gossip.KindKey, Key: kv.Key, Version: v}
	}
	for _, inv := range invs {
		g.cache.Raise(inv.Key, inv.Version)
		g.ctr.inc(cSent)
	}
	return g.n.publish(ctx, invs, writeOpts(opts))
}

// InvalidateGroup drops every value of the group, here before it returns
// and on every other member as [Group.Invalidate] does (with [AckAll], before
// it returns). Fills in flight when it lands are neither stored nor returned
// to readers that arrive after it: they load again. Use it when a change
// touches keys you cannot name (a bulk UPDATE, a TRUNCATE, a migration).
func (g *Group[V]) InvalidateGroup(ctx context.Context, opts ...WriteOption) error {
	if g.n.closed.Load() {
		return ErrClosed
	}
	g.purge()
	g.ctr.inc(cSent)
	return g.n.publish(ctx, []gossip.Invalidation{{Group: g.name, Kind: gossip.KindGroup}}, writeOpts(opts))
}
