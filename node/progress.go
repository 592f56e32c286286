package node

import (
	"context"
	"fmt"
	"time"

	"github.com/nearcache/nearcache/gossip"
)

// servable reports whether the group's cached values may be served now: the
// node trusts its cache (G5) and, for a LogFed group, the feed's progress is
// fresh (G9).
func (g *Group[V]) servable() bool {
	return g.n.servable() && (!g.cfg.LogFed || g.logFresh())
}

// logFresh reports whether the newest feed progress heard covers the log up
// to a time no older than MaxStaleness. One wall-clock read.
func (g *Group[V]) logFresh() bool {
	return brokenNoLogFresh || time.Now().UnixNano()-g.logAsOf.Load() <= int64(g.n.cfg.MaxStaleness)
}

// heardProgress records feed progress as of asOf (unix nanos); it reports
// whether it moved. Progress from the future beyond MaxClockSkew is not
// believed (a wrong clock, or a forged message): it would keep a lagging
// group trusted.
func (g *Group[V]) heardProgress(asOf int64) bool {
	if asOf > time.Now().Add(g.n.cfg.MaxClockSkew).UnixNano() {
		return false
	}
	for {
		cur := g.logAsOf.Load()
		if asOf <= cur {
			return false
		}
		if g.logAsOf.CompareAndSwap(cur, asOf) {
			return true
		}
	}
}

// Progress reports a feed's progress: every change of the source's log up
// to the source's position at asOf has been applied with [Node.ApplyChanges]
// (which returned, so every live member acknowledged it). It is applied here
// and published to every member, where the LogFed groups named serve cached
// values for MaxStaleness after asOf (G9). Call it only once that holds: a
// progress sent early lets nodes serve values the source has superseded.
// Progress is not acknowledged: a member that misses it stops serving the
// group's cached values after MaxStaleness, which is safe.
func (n *Node) Progress(ctx context.Context, groups []string, asOf time.Time) error {
	if n.closed.Load() {
		return ErrClosed
	}
	invs := make([]gossip.Invalidation, 0, len(groups))
	hs := make([]groupHandle, 0, len(groups))
	for _, name := range groups {
		g := n.group(name)
		if g == nil {
			return fmt.Errorf("node: Progress: %w %q", ErrUnknownGroup, name)
		}
		invs = append(invs, gossip.Invalidation{Group: name, Kind: gossip.KindProgress, Version: uint64(asOf.UnixNano())})
		hs = append(hs, g)
	}
	if asOf.UnixNano() <= 0 {
		return fmt.Errorf("node: Progress: time %v is before 1970", asOf)
	}
	for i, g := range hs {
		g.apply(kindProg, "", invs[i].Version)
	}
	return n.publish(ctx, invs, WriteOption{})
}
