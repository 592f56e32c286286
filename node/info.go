package node

import (
	"context"
	"time"

	"github.com/nearcache/nearcache/local"
)

// Source says where a read's value came from.
type Source uint8

const (
	FromCache Source = iota + 1 // this node's store (a hit)
	FromOwner                   // the key's owner, on a miss here
	FromLoad                    // this node's loader, on a miss here
	FromStale                   // an expired value served because reloading it failed (StaleOnError)
)

func (s Source) String() string {
	switch s {
	case FromCache:
		return "cache"
	case FromOwner:
		return "owner"
	case FromLoad:
		return "load"
	case FromStale:
		return "stale-on-error"
	}
	return "unknown"
}

// Info is a value with what a read knows about it.
type Info[V any] struct {
	Value   V
	Version uint64        // the source's version of Value (a stamp in ClockVersions groups)
	Source  Source        // where it came from
	Age     time.Duration // how long this node has held it (0 when this read fetched it)
}

// readInfo is what the read paths report for GetInfo.
type readInfo struct {
	version  uint64
	from     Source
	storedAt int64 // Cache.Now when stored; 0 = just fetched
}

// hitInfo describes a value served from the store.
func (g *Group[V]) hitInfo(e *local.Entry[V]) readInfo {
	return readInfo{version: e.Version, from: FromCache, storedAt: e.StoredAt}
}

// GetInfo is [Group.Get], returning with the value its version, where it came
// from and how long this node has held it: for debugging, and for showing
// "as of" to users. It costs a little more than Get on a hit (one more clock
// read); a not-found answer comes with a zero Info and the same error as
// Get's.
func (g *Group[V]) GetInfo(ctx context.Context, key string, opts ...ReadOption) (Info[V], error) {
	mode := readCached
	for _, o := range opts {
		mode = max(mode, o.mode)
	}
	var v V
	var ri readInfo
	if e, ok := g.lookup(key, mode); ok {
		if e.Absent {
			return Info[V]{}, g.absent
		}
		v, ri = e.Value, g.hitInfo(e)
	} else {
		var err error
		if v, ri, err = g.get(ctx, key, mode); err != nil {
			return Info[V]{}, err
		}
	}
	info := Info[V]{Value: v, Version: ri.version, Source: ri.from}
	if ri.storedAt > 0 && ri.from != FromLoad && ri.from != FromOwner {
		info.Age = time.Duration(max(0, g.cache.Now()-ri.storedAt))
	}
	return info, nil
}

// Owner returns the name of the member that owns key (loads it for the
// cluster): this node's name when it does, or when it is alone or owner
// fills are off. For debugging.
func (g *Group[V]) Owner(key string) string {
	if o := g.n.owners.Load(); o != nil && o.ring.Len() >= 2 && g.ownerFills() {
		return o.ring.Owner(g.name + "\x00" + key)
	}
	return g.n.cfg.Name
}
