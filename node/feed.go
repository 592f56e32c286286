package node

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nearcache/nearcache/gossip"
)

// ChangeKind says what a [Change] invalidates.
type ChangeKind uint8

const (
	ChangeKey   ChangeKind = iota + 1 // one key, at Version
	ChangeTag                         // every key stored under the tag Key (F3: dependent keys)
	ChangeGroup                       // every key of the group (a TRUNCATE, a bulk change)
)

func (k ChangeKind) String() string {
	switch k {
	case ChangeKey:
		return "key"
	case ChangeTag:
		return "tag"
	case ChangeGroup:
		return "group"
	}
	return fmt.Sprintf("ChangeKind(%d)", uint8(k))
}

// Change is one committed change of the source of truth, as a [ChangeFeed]
// read it from the source's own commit log: a write by anyone (an SQL
// console, a migration, another service), not only by this process.
type Change struct {
	Group   string
	Kind    ChangeKind
	Key     string // the key (ChangeKey) or the tag (ChangeTag); "" for ChangeGroup
	Version uint64 // ChangeKey: the committed version (> 0); 0 in a ClockVersions group, whose versions this node stamps
}

// ChangeSink takes committed changes from a [ChangeFeed]. A *Node is one.
type ChangeSink interface {
	// ApplyChanges applies a batch and returns once every live member
	// acknowledged it (AckAll), or an error: then the feed must not report
	// the batch as done to the source (it delivers it again later; floors
	// make a repeat harmless).
	ApplyChanges(ctx context.Context, changes []Change, opts ...WriteOption) error
	// Progress reports that every change of the source's log up to the
	// source's position at asOf was applied (and ApplyChanges returned): the
	// LogFed groups named may serve cached values until MaxStaleness after
	// asOf (G9). A feed calls it every fraction of MaxStaleness, also when
	// nothing changed.
	Progress(ctx context.Context, groups []string, asOf time.Time) error
}

// ChangeFeed reads committed changes from the source of truth and delivers
// them to a ChangeSink until ctx ends; the library's own feeds live outside
// this package (package pgfeed reads PostgreSQL's logical replication), so
// the library depends on no database driver. Run returns ctx's error once
// ctx ends, or an error it cannot recover from.
type ChangeFeed interface {
	Run(ctx context.Context, sink ChangeSink) error
}

// ErrUnknownGroup is returned (wrapped) by ApplyChanges for a change of a
// group this node does not have.
var ErrUnknownGroup = errors.New("node: unknown group")

// ApplyChanges applies a batch of committed changes: each is applied here
// first (as Invalidate, InvalidateTag or InvalidateGroup would), then the
// whole batch is published at once, in as few gossip packets as fit, and
// the call waits until every live member acknowledged it (AckAll is implied;
// give ctx a deadline). A bad change (unknown group or kind, bad key,
// version 0 in a SourceVersions group, a version in a ClockVersions one)
// fails the batch before anything is applied. ClockVersions keys are
// stamped by this node's clock when applied: a loader of such a group
// returns no version of its own (see ClockVersions), so the stamp orders the
// change after every load that began before it.
func (n *Node) ApplyChanges(ctx context.Context, changes []Change, opts ...WriteOption) error {
	if n.closed.Load() {
		return ErrClosed
	}
	type applied struct {
		g   groupHandle
		inv gossip.Invalidation
	}
	batch := make([]applied, 0, len(changes))
	for i, c := range changes {
		g := n.group(c.Group)
		if g == nil {
			return fmt.Errorf("node: ApplyChanges: changes[%d]: %w %q", i, ErrUnknownGroup, c.Group)
		}
		inv, err := g.change(c)
		if err != nil {
			return fmt.Errorf("node: ApplyChanges: changes[%d]: %w", i, err)
		}
		batch = append(batch, applied{g, inv})
	}
	invs := make([]gossip.Invalidation, len(batch))
	for i, a := range batch {
		a.g.apply(uint8(a.inv.Kind), a.inv.Key, a.inv.Version)
		invs[i] = a.inv
	}
	o := writeOpts(opts)
	o.ackAll = true
	return n.publish(ctx, invs, o)
}

// change is groupHandle.change.
func (g *Group[V]) change(c Change) (gossip.Invalidation, error) {
	inv := gossip.Invalidation{Group: g.name}
	switch c.Kind {
	case ChangeKey:
		if err := validKey("key", c.Key); err != nil {
			return inv, err
		}
		v, err := g.version("a change", c.Version)
		if err != nil {
			return inv, err
		}
		inv.Kind, inv.Key, inv.Version = gossip.KindKey, c.Key, v
	case ChangeTag:
		if err := validKey("tag", c.Key); err != nil {
			return inv, err
		}
		inv.Kind, inv.Key = gossip.KindTag, c.Key
	case ChangeGroup:
		if c.Key != "" || c.Version != 0 {
			return inv, errors.New("node: a ChangeGroup change takes no key and no version")
		}
		inv.Kind = gossip.KindGroup
	default:
		return inv, fmt.Errorf("node: unknown change kind %v", c.Kind)
	}
	return inv, nil
}
