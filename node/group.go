package node

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync/atomic"
	"time"

	"github.com/nearcache/nearcache/gossip"
	"github.com/nearcache/nearcache/local"
	"github.com/nearcache/nearcache/node/internal/flight"
	"github.com/nearcache/nearcache/node/internal/peer"
)

// Versioning says where a group's versions come from.
type Versioning int

const (
	// SourceVersions: the loader returns the source's version of each value
	// and writers pass the new version to Invalidate. The default.
	SourceVersions Versioning = iota
	// ClockVersions: the source has no versions. The node stamps each
	// invalidation with its hybrid logical clock and each load with
	// max(clock at load start - MaxClockSkew, the key's floor at load start).
	// It relies on two assumptions: the wall clocks of the nodes differ by less
	// than Config.MaxClockSkew, and writers call Invalidate after their write
	// committed. Under them G1, G2 and G8 hold as with source versions; a load
	// that starts within MaxClockSkew of a remote write may be refused and
	// retried (never served stale).
	ClockVersions
)

// MaxKeyLen is the longest key or tag a group accepts: it must fit one gossip
// packet.
const MaxKeyLen = 1024

// GroupConfig configures a [Group]. Zero fields take the default written beside them.
type GroupConfig[V any] struct {
	Loader     Loader[V]     // required: the source of truth
	Codec      Codec[V]      // nil = raw bytes for []byte and string values, JSONCodec otherwise; sizes values and carries them between nodes
	TTL        time.Duration // 0 = no expiry (invalidations only); jittered down by up to 10%
	MaxCost    int64         // local cache budget in bytes; 0 = 64 MiB
	Versioning Versioning    // SourceVersions (default) or ClockVersions
	// Cost returns a value's size in bytes for MaxCost; nil = len(key) + the
	// length of its encoding (len for string and []byte values) + 64.
	Cost func(key string, v V) int64
	// NegativeTTL caches "the source has no such key" this long (Gets then
	// return a not-found error without loading). An Invalidate of the key,
	// after the row is created, ends it at once. 0 = not cached.
	NegativeTTL time.Duration
	// EarlyRefresh is XFetch's beta: a key read often enough is reloaded in
	// the background shortly before its TTL ends (earlier for slower loads),
	// while readers keep getting the current value, so a hot key never
	// expires under its readers. 0 = 1; negative = off. Only with a TTL.
	EarlyRefresh float64
	// StaleOnError serves a value whose TTL has ended, for at most the node's
	// MaxStaleness past it, when reloading it fails (the source is down). An
	// invalidated value is never served. Costs a clock read per hit.
	StaleOnError bool
	// Tags names the tags a key depends on (F3): InvalidateTag(t) invalidates
	// every key whose Tags include t. Tags must depend on the key only, since
	// they are captured before the load starts. nil = no tags.
	Tags func(key string) []string
	// LogFed marks a group whose changes a [ChangeFeed] reads from the
	// source's commit log (G9): its cached values are served only while this
	// node has heard, within the node's MaxStaleness, the feed report that it
	// applied the log up to the source's position as of a time no older than
	// MaxStaleness (wall clocks, within Config.MaxClockSkew of each other).
	// A node cut off from the feed, or a feed cut off from the source or
	// lagging behind it, reads through instead until the feed catches up.
	// false = fed by this process's writers only (Invalidate and friends).
	LogFed bool
	// SampleEvery is the consistency sampler's rate: one cache hit in
	// SampleEvery (rounded up to a power of two) is checked, off the hot
	// path, against the source's current version (the loader's LoadVersion
	// when it is a VersionLoader, else a load). 0 = 1024; negative = off.
	// Off in ClockVersions groups (the source has no versions to compare).
	SampleEvery int
	// SampleBudget caps the sampler's checks per second on this node;
	// sampled hits over it are dropped (counted). 0 = 10.
	SampleBudget int
}

// Group is a typed cache of one kind of value, with its own loader, local
// store and version floors. Create it with [NewGroup] on every node of the
// cluster under the same name. All methods are safe for concurrent use.
type Group[V any] struct {
	n     *Node
	name  string
	cfg   GroupConfig[V]
	cache *local.Cache[V]
	ctr   counters

	// purgeEpoch changes on every purge; a fill that started before it is not stored.
	purgeEpoch atomic.Uint64
	// logAsOf is the newest feed progress heard (unix nanos; LogFed only).
	logAsOf atomic.Int64
	// stale is the back-off table of keys whose floor stays above their source (poison.go).
	stale staleKeys
	// sampler checks a fraction of hits against the source (sampler.go); never nil.
	sampler *sampler

	absent     error   // returned for cached negative entries (no allocation on the hit path)
	beta       float64 // XFetch beta; 0 = early refresh off
	checkStale bool    // StaleOnError: entries outlive their TTL by MaxStaleness; hits check ExpireAt

	flights flight.Group[flightKey, fillResult[V]] // loads in flight, shared by their readers
}

// groupHandle is what a Node needs of its groups, whatever their value type.
type groupHandle interface {
	apply(kind uint8, key string, version uint64)
	// change validates one committed change of this group and returns its
	// invalidation (a ClockVersions key stamped here), for apply and publish.
	change(c Change) (gossip.Invalidation, error)
	serveFill(ctx context.Context, key string, floor uint64) peer.Response
	serveFillMany(ctx context.Context, keys []string, floors []uint64, out []peer.Response)
	purge()
	stats() GroupStats
	close()
}

// NewGroup creates the group name on n. Names are unique per node.
func NewGroup[V any](n *Node, name string, cfg GroupConfig[V]) (*Group[V], error) {
	switch {
	case n == nil:
		return nil, errors.New("node: NewGroup on a nil Node")
	case name == "" || len(name) > 255:
		return nil, errors.New("node: group name must be 1 to 255 bytes")
	case cfg.Loader == nil:
		return nil, fmt.Errorf("node: group %q: Loader is required", name)
	case cfg.TTL < 0:
		return nil, fmt.Errorf("node: group %q: TTL must not be negative", name)
	case cfg.MaxCost < 0:
		return nil, fmt.Errorf("node: group %q: MaxCost must not be negative", name)
	case cfg.NegativeTTL < 0:
		return nil, fmt.Errorf("node: group %q: NegativeTTL must not be negative", name)
	case cfg.StaleOnError && cfg.TTL == 0:
		return nil, fmt.Errorf("node: group %q: StaleOnError needs a TTL (values without one never expire)", name)
	case cfg.Versioning != SourceVersions && cfg.Versioning != ClockVersions:
		return nil, fmt.Errorf("node: group %q: unknown Versioning %d", name, cfg.Versioning)
	}
	if cfg.Codec == nil {
		cfg.Codec = defaultCodec[V]()
	}
	_, observed := n.cfg.Observer.(nopObserver)
	var grace time.Duration
	if cfg.StaleOnError {
		grace = n.cfg.MaxStaleness
	}
	cache, err := local.New[V](local.Config{
		MaxCost:        cfg.MaxCost,
		FloorRetention: n.cfg.FloorRetention,
		Metrics:        !observed, // ristretto's counters cost a little per Get: only when someone reads them
		Grace:          grace,
		Epoch:          n.epoch, // so a hit reads the clock once (servableNow, Cache.GetAt)
	})
	if err != nil {
		return nil, fmt.Errorf("node: group %q: %w", name, err)
	}
	g := &Group[V]{n: n, name: name, cfg: cfg, cache: cache,
		absent: &LoadError{Group: name, Err: notFoundError{}}, checkStale: cfg.StaleOnError}
	switch {
	case (cfg.TTL == 0 && !isTTLLoader(cfg.Loader)) || cfg.EarlyRefresh < 0:
	case cfg.EarlyRefresh == 0:
		g.beta = 1
	default:
		g.beta = cfg.EarlyRefresh
	}
	every := cfg.SampleEvery
	if cfg.Versioning == ClockVersions {
		every = -1
	}
	g.sampler = newSampler(every, cfg.SampleBudget, n.epoch)
	if err := n.addGroup(name, g); err != nil {
		cache.Close()
		return nil, err
	}
	if !g.sampler.off && n.startSampler() {
		go g.sampleLoop()
	}
	return g, nil
}

// Name returns the group's name.
func (g *Group[V]) Name() string { return g.name }

func validKey(what, key string) error {
	if key == "" || len(key) > MaxKeyLen {
		return fmt.Errorf("node: %s must be 1 to %d bytes, got %d", what, MaxKeyLen, len(key))
	}
	return nil
}

func (g *Group[V]) cost(key string, v V) int64 {
	if g.cfg.Cost != nil {
		return max(1, g.cfg.Cost(key, v))
	}
	switch x := any(v).(type) {
	case []byte:
		return int64(len(key) + len(x) + 64)
	case string:
		return int64(len(key) + len(x) + 64)
	}
	b, err := g.cfg.Codec.Encode(v)
	if err != nil {
		return int64(len(key) + 64)
	}
	return int64(len(key) + len(b) + 64)
}

// apply applies one remote invalidation and counts it.
func (g *Group[V]) apply(kind uint8, key string, version uint64) {
	g.ctr.inc(cReceived)
	changed := false
	switch kind {
	case kindKey:
		if !g.plausible(version) {
			g.ctr.inc(cVersionsRefused)
			g.n.cfg.Logger.Warn("invalidation refused: version out of range", "group", g.name, "key", key, "version", version)
			return
		}
		if g.cfg.Versioning == ClockVersions {
			g.n.clock.observe(version)
		}
		changed = g.cache.Raise(key, version)
	case kindTag:
		g.cache.BumpTag(key)
		changed = true
	case kindGroup:
		g.purge()
		changed = true
	case kindProg:
		changed = g.heardProgress(int64(min(version, math.MaxInt64)))
	}
	if changed {
		g.ctr.inc(cApplied)
	}
}

// purge drops every cached value and keeps fills in flight from storing theirs.
func (g *Group[V]) purge() {
	g.purgeEpoch.Add(1)
	g.cache.Purge()
	g.ctr.inc(cPurges)
}

func (g *Group[V]) close() { g.cache.Close() }

func (g *Group[V]) stats() GroupStats {
	ls := g.cache.Stats()
	s := GroupStats{
		Name: g.name,
		Hits: ls.Hits - g.ctr[cInnerLookups].Load(),
		Local: LocalStats{
			Floors:       ls.Floors,
			FloorsFolded: ls.FloorsFolded,
			KeysAdded:    ls.KeysAdded,
			KeysEvicted:  ls.KeysEvicted,
			CostAdded:    ls.CostAdded,
			CostEvicted:  ls.CostEvicted,
		},
	}
	g.ctr.snapshot(&s)
	s.Sampler = g.sampler.stats(time.Now())
	return s
}

// Stats returns a snapshot of the group's counters on this node (the same
// figures Node.Stats reports per group).
func (g *Group[V]) Stats() GroupStats { return g.stats() }
