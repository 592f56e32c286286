package node

import (
	"context"
	"fmt"

	"github.com/nearcache/nearcache/gossip"
	"github.com/nearcache/nearcache/local"
)

// MaxVersion is the highest version a group accepts, from a writer, a
// loader, a peer or the network (2^63-1: what a signed 64-bit column holds).
// A larger one is refused: a version floor above every version the source
// will ever return would make its key unservable.
const MaxVersion = 1<<63 - 1

const (
	kindKey   = uint8(gossip.KindKey)
	kindTag   = uint8(gossip.KindTag)
	kindGroup = uint8(gossip.KindGroup)
	kindProg  = uint8(gossip.KindProgress)
)

// WriteOption changes how an invalidation is spread.
type WriteOption struct {
	ackAll  bool
	ackedBy *[]string
}

// AckAll returns a write option that makes the call wait until every live
// member acknowledged the invalidation (G7), or fail with an *[AckError]
// naming those that did not before ctx ended. Give ctx a deadline. On a node
// that has not joined its cluster yet (or was left alone by a failure and has
// not caught up since), it fails at once with an error wrapping
// [ErrNotJoined]: the members that may serve the key are unknown.
func AckAll() WriteOption { return WriteOption{ackAll: true} }

// AckedBy returns a write option that, with [AckAll], stores in *members the
// names (sorted) of the members the call waited for: every member this node
// listed as alive when it published. For debugging: a node missing from it
// was not listed by this writer, and does not trust its cache until every
// writer lists it (see [Node.WaitReady]).
func AckedBy(members *[]string) WriteOption { return WriteOption{ackedBy: members} }

// writeOpts folds opts.
func writeOpts(opts []WriteOption) WriteOption {
	var w WriteOption
	for _, o := range opts {
		w.ackAll = w.ackAll || o.ackAll
		if o.ackedBy != nil {
			w.ackedBy = o.ackedBy
		}
	}
	return w
}

// version checks a writer's version against the group's versioning and
// returns the one to use.
func (g *Group[V]) version(call string, version uint64) (uint64, error) {
	switch g.cfg.Versioning {
	case ClockVersions:
		if version != 0 {
			return 0, fmt.Errorf("node: %s on ClockVersions group %q takes version 0 (the node stamps it), got %d", call, g.name, version)
		}
		return g.n.clock.now(), nil
	default:
		if version == 0 {
			return 0, fmt.Errorf("node: %s on group %q needs the committed version (> 0); use ClockVersions when the source has none", call, g.name)
		}
		if version > MaxVersion {
			return 0, fmt.Errorf("node: %s on group %q: version %d is above MaxVersion (2^63-1)", call, g.name, version)
		}
		return version, nil
	}
}

// Invalidate tells the cluster that version of key was committed to the
// source: every cached value below it is stale. Call it after the write
// committed. This node drops its copy before Invalidate returns (G2); the
// others drop theirs within the propagation bound, or, with [AckAll], before
// it returns. version must be the committed version (> 0), or 0 in a
// ClockVersions group.
//
// The local effect never fails once the arguments are valid; an error means
// the invalidation may not have reached every member (ctx ended, or AckAll
// missed some), which the anti-entropy and staleness bounds still cover.
func (g *Group[V]) Invalidate(ctx context.Context, key string, version uint64, opts ...WriteOption) error {
	if g.n.closed.Load() {
		return ErrClosed
	}
	if err := validKey("key", key); err != nil {
		return err
	}
	v, err := g.version("Invalidate", version)
	if err != nil {
		return err
	}
	g.cache.Raise(key, v)
	g.ctr.inc(cSent)
	return g.n.publish(ctx, []gossip.Invalidation{{Group: g.name, Kind: gossip.KindKey, Key: key, Version: v}}, writeOpts(opts))
}

// Set is a write-through: after writing value with version to the source,
// cache it here and invalidate older copies everywhere else. It never replaces
// a newer cached version. version follows the rules of [Group.Invalidate].
func (g *Group[V]) Set(ctx context.Context, key string, value V, version uint64, opts ...WriteOption) error {
	if g.n.closed.Load() {
		return ErrClosed
	}
	if err := validKey("key", key); err != nil {
		return err
	}
	v, err := g.version("Set", version)
	if err != nil {
		return err
	}
	g.cache.Raise(key, v)
	if g.servable() {
		var tags []local.TagVersion
		if g.cfg.Tags != nil {
			for _, t := range g.cfg.Tags(key) {
				tags = append(tags, local.TagVersion{Tag: t, Version: g.cache.TagVersion(t)})
			}
		}
		if g.cache.Set(key, local.Entry[V]{Value: value, Version: v}, g.cost(key, value), g.cfg.TTL, tags) == local.Stored {
			g.ctr.inc(cSetsStored)
		} else {
			g.ctr.inc(cSetsRejected)
		}
	}
	g.ctr.inc(cSent)
	return g.n.publish(ctx, []gossip.Invalidation{{Group: g.name, Kind: gossip.KindKey, Key: key, Version: v}}, writeOpts(opts))
}

// InvalidateTag invalidates every key of the group whose GroupConfig.Tags
// include tag (F3: dependent keys), here before it returns and on the other
// members as [Group.Invalidate] does.
func (g *Group[V]) InvalidateTag(ctx context.Context, tag string, opts ...WriteOption) error {
	if g.n.closed.Load() {
		return ErrClosed
	}
	if err := validKey("tag", tag); err != nil {
		return err
	}
	g.cache.BumpTag(tag)
	g.ctr.inc(cSent)
	return g.n.publish(ctx, []gossip.Invalidation{{Group: g.name, Kind: gossip.KindTag, Key: tag}}, writeOpts(opts))
}
