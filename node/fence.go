package node

import (
	"time"

	"github.com/nearcache/nearcache/local"
)

// fence is what a fill captures before it asks anyone for a value (G8): the
// key's version floor, the versions of the tags it depends on and the group's
// purge epoch. An invalidation, tag bump or purge that lands while the value
// is on its way moves one of them, and the result is then neither stored nor
// returned. Capture it with [Group.capture]; judge a result with
// [Group.admits] (may it be returned?) and [Group.storable] (may it be kept?).
type fence struct {
	floor uint64             // Floor(key) at capture (a coarse bucket floor included): what the store will check
	exact uint64             // ExactFloor(key) at capture: what admits checks, the owner is told, and the back-off judges by
	tags  []local.TagVersion // the key's tags and their versions at capture; nil without Tags
	epoch uint64             // purgeEpoch at capture
}

// capture takes key's fence now, before the value is asked for.
func (g *Group[V]) capture(key string) fence {
	f := fence{floor: g.cache.Floor(key), exact: g.cache.ExactFloor(key), epoch: g.purgeEpoch.Load()}
	if g.cfg.Tags != nil {
		for _, t := range g.cfg.Tags(key) {
			f.tags = append(f.tags, local.TagVersion{Tag: t, Version: g.cache.TagVersion(t)})
		}
	}
	return f
}

// admits reports whether a result of key with version, fenced by f, may
// still be returned now: not below the key's exact floor, no purge of the
// group and no bump of a tag it depends on since f was captured. (A coarse floor, kept once
// MaxFloors is reached, only stops caching.)
func (g *Group[V]) admits(key string, f fence, version uint64) bool {
	if brokenNoStaleFill {
		return true
	}
	if version < g.cache.ExactFloor(key) || g.purgeEpoch.Load() != f.epoch {
		return false // below the floor, or a purge (InvalidateGroup, lost stream, earned trust) since capture
	}
	for _, t := range f.tags {
		if g.cache.TagVersion(t.Tag) != t.Version {
			return false
		}
	}
	return true
}

// storable reports whether a fill fenced by f, that took took, may be
// handed to the store (which checks floors and tags again as it stores): not
// after a purge that came after the capture, not slower than LoadTimeout
// (the fences it relied on may have been forgotten), not while the node does
// not trust its cache.
func (g *Group[V]) storable(f fence, took time.Duration) bool {
	if brokenNoStaleFill {
		return true
	}
	return took <= g.n.cfg.LoadTimeout && g.purgeEpoch.Load() == f.epoch && g.servable()
}

// reusable reports whether a finished, stored fill may answer a reader that
// arrives after it finished: still admitted, and no purge since.
func (g *Group[V]) reusable(key string, r fillResult[V]) bool {
	return r.stored && r.err == nil && g.admits(key, r.fence, r.version) && g.purgeEpoch.Load() == r.fence.epoch
}
