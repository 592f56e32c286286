package node

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"time"

	"github.com/nearcache/nearcache/local"
)

type readMode uint8

const (
	readCached readMode = iota
	readVerified
	readAuthoritative
)

// ReadOption chooses how a [Group.Get] may use the cache.
type ReadOption struct{ mode readMode }

// Verified returns a read option that checks a cached value's version against
// the source before serving it: through the loader's [VersionLoader] when it
// has one (cheap), otherwise by loading the value. Use it where a stale value
// costs something but not everything. ClockVersions groups have no source
// versions: a verified read there is authoritative.
func Verified() ReadOption { return ReadOption{mode: readVerified} }

// Authoritative returns a read option that bypasses the cache: the value is
// read from the source, then cached for others. Make critical decisions (a
// balance check before a withdrawal) on authoritative reads only.
func Authoritative() ReadOption { return ReadOption{mode: readAuthoritative} }

// A read whose load comes back below the key's floor (the source lags the
// invalidation, or a write landed during the load) loads again after a
// growing pause, at least minStaleTries times and then while the LoadTimeout
// allows, before it gives up with a *StaleError: a hot key under constant
// writes needs a few tries, and a correct value is worth the wait. The pause
// doubles from 10 ms up to maxStalePause: a replica a few ms behind is
// caught at once, and a floor the source never reaches (a poisoned version,
// issue 12) costs about a dozen loads in a 5 s LoadTimeout, not fifty (at a
// 100 ms cap it cost 53 through the HTTP API), before the key backs off.
const (
	minStaleTries = 3
	maxStalePause = time.Second
)

// Get returns the value of key. With no option the cached value is served if
// there is one (a hint: at most as stale as the propagation bound, or
// MaxStaleness on a cut-off node); on a miss, concurrent readers on this node
// share one load. A value below the key's version floor is never returned.
//
// A miss in the source is reported with an error for which [IsNotFound] is true.
func (g *Group[V]) Get(ctx context.Context, key string, opts ...ReadOption) (V, error) {
	mode := readCached
	for _, o := range opts {
		mode = max(mode, o.mode)
	}
	if e, ok := g.lookup(key, mode); ok {
		if e.Absent {
			var zero V
			return zero, g.absent
		}
		return e.Value, nil
	}
	v, _, err := g.get(ctx, key, mode)
	return v, err
}

// lookup is the hit path: the stored entry, when the read may be served
// from the store (a cached read, a trusted node, a fresh feed for LogFed
// groups, an entry neither expired nor fenced). Negative entries are counted
// here; the caller returns their error.
func (g *Group[V]) lookup(key string, mode readMode) (*local.Entry[V], bool) {
	ok, now := g.n.servableNow()
	if mode != readCached || !ok || (g.cfg.LogFed && !g.logFresh()) {
		return nil, false
	}
	if now >= 0 {
		now++ // the store's clock: Cache.Now is ns since the same epoch, plus one
	}
	e, ok := g.cache.GetAt(key, now) // counted by the store's striped counters
	if !ok {
		return nil, false
	}
	if g.checkStale && g.expired(e) {
		g.ctr.inc(cInnerLookups) // a store hit, but a miss of the Get
		return nil, false
	}
	if r := rand.Uint32(); r&refreshSample == 0 || r>>4&g.sampler.mask == 0 { // one draw for both samples
		if r&refreshSample == 0 && e.ExpireAt != 0 && g.beta > 0 {
			g.maybeRefresh(key, e)
		}
		if s := g.sampler; !s.off && r>>4&s.mask == 0 {
			s.offer(key, e.Version)
		}
	}
	if e.Absent {
		g.ctr.inc(cNegativeHits)
	}
	return e, true
}

// get is every path but the plain hit; the info says what the read was.
func (g *Group[V]) get(ctx context.Context, key string, mode readMode) (V, readInfo, error) {
	var zero V
	if g.n.closed.Load() {
		return zero, readInfo{}, ErrClosed
	}
	if err := validKey("key", key); err != nil {
		return zero, readInfo{}, err
	}
	trusted := g.servable()
	if !trusted {
		g.ctr.inc(cDegraded)
		if g.n.cfg.Degraded == DegradedFail {
			return zero, readInfo{}, ErrDegraded
		}
	}
	switch mode {
	case readVerified:
		g.ctr.inc(cBypass)
		if v, info, ok, err := g.verify(ctx, key, trusted); ok || err != nil {
			return v, info, err
		}
		return g.load(ctx, key, loadPrivate)
	case readAuthoritative:
		g.ctr.inc(cBypass)
		return g.load(ctx, key, loadPrivate)
	default:
		if !trusted {
			// Reading through: this node may not be listed by every writer
			// yet (it just restarted or rejoined), so writes it never heard
			// of may have been acknowledged without it, and no floor fences
			// a load that began before them. Share only loads that begin
			// after this read did.
			return g.load(ctx, key, loadFresh)
		}
		g.ctr.inc(cMisses)
		return g.load(ctx, key, loadShared)
	}
}

// verify serves a cached value if the source's current version matches it.
// ok=false means "load instead".
func (g *Group[V]) verify(ctx context.Context, key string, trusted bool) (v V, info readInfo, ok bool, err error) {
	vl, has := g.cfg.Loader.(VersionLoader)
	if !has || !trusted || g.cfg.Versioning == ClockVersions {
		return v, info, false, nil
	}
	e, hit := g.cache.Get(key)
	if !hit {
		return v, info, false, nil
	}
	g.ctr.inc(cInnerLookups)
	ctx, cancel := context.WithTimeout(ctx, g.n.cfg.LoadTimeout)
	defer cancel()
	ver, err := vl.LoadVersion(ctx, key)
	if err != nil {
		if IsNotFound(err) {
			g.cache.Delete(key)
		}
		return v, info, false, &LoadError{Group: g.name, Key: key, Err: err}
	}
	if ver == e.Version {
		return e.Value, g.hitInfo(e), true, nil
	}
	if ver > e.Version {
		g.cache.Raise(key, ver) // the source says a newer version exists
	}
	return v, info, false, nil
}

// loadMode says which loads a read may share.
type loadMode uint8

const (
	loadShared  loadMode = iota // any load of the key in flight on this node (fenced by floors)
	loadFresh                   // only a load that begins after the read (reading through, untrusted)
	loadPrivate                 // its own load (authoritative and verified reads)
)

// load reads key from the source, sharing a load as mode allows (an
// authoritative read must not be served by a load that started before it).
// It loads again while the result is below the key's floor, within the
// LoadTimeout (see minStaleTries).
func (g *Group[V]) load(ctx context.Context, key string, mode loadMode) (V, readInfo, error) {
	var zero V
	var none readInfo
	var r fillResult[V]
	began := time.Now()
	tries := minStaleTries
	switch rec, st := g.stale.check(key, g.cache.ExactFloor(key), began); st {
	case staleBackingOff:
		g.ctr.inc(cStaleFastFails)
		return zero, none, &StaleError{Group: g.name, Key: key, Version: rec.got, Floor: rec.floor}
	case staleProbation:
		tries = 1 // it was below its floor a moment ago: one look, no retries
	}
	pause := 10 * time.Millisecond
	rejected := false // StaleRejected counts Gets, not reload attempts
	for attempt := 0; ; attempt++ {
		var err error
		switch mode {
		case loadShared:
			r, err = g.sharedFill(ctx, key)
		case loadFresh:
			r, err = g.freshFill(ctx, key)
		default:
			r, err = g.privateFill(ctx, key)
		}
		if err != nil {
			return zero, none, err
		}
		if r.err != nil && !(IsNotFound(r.err) && !g.admits(key, r.fence, r.version)) {
			if mode != loadPrivate && g.checkStale && !errors.Is(r.err, context.Canceled) && !IsNotFound(r.err) {
				if v, info, ok := g.staleOnError(key); ok {
					return v, info, nil
				}
			}
			return zero, readInfo{version: r.version, from: r.from}, r.err
		}
		if r.err == nil && g.admits(key, r.fence, r.version) {
			return r.val, readInfo{version: r.version, from: r.from}, nil
		}
		if !rejected {
			rejected = true
			g.ctr.inc(cStaleRejected)
		}
		if attempt == 0 && r.version < r.fence.exact && g.cfg.Versioning == SourceVersions {
			// The source is below a floor known before the load: it lags, or
			// the floor is poisoned. One reader retries; the others wait for
			// its outcome and take one more look (or its back-off).
			wait, leader := g.stale.lead(key)
			if leader {
				defer g.stale.endEpisode(key)
			} else {
				select {
				case <-wait:
				case <-ctx.Done():
					return zero, none, ctx.Err()
				}
				if rec, st := g.stale.check(key, g.cache.ExactFloor(key), time.Now()); st == staleBackingOff {
					g.ctr.inc(cStaleFastFails)
					return zero, none, &StaleError{Group: g.name, Key: key, Version: rec.got, Floor: rec.floor}
				}
				tries = 1
				continue
			}
		}
		if r.version >= r.fence.exact && attempt == 0 && tries > 1 {
			// The load began before the invalidation that fenced it: the
			// source had the new version all along. Try again at once
			// instead of sleeping (the tail under writes, issue 14).
			continue
		}
		if attempt+1 >= tries && (tries == 1 || g.cfg.Versioning != SourceVersions || time.Since(began)+pause > g.n.cfg.LoadTimeout) {
			break // ClockVersions: a fresh stamp was due at once; no pause helps
		}
		if g.cfg.Versioning == SourceVersions {
			// The source lags the invalidation: give it a moment.
			t := time.NewTimer(pause)
			select {
			case <-ctx.Done():
				t.Stop()
				return zero, none, ctx.Err()
			case <-t.C:
			}
			pause = min(2*pause, maxStalePause)
		}
	}
	floor := g.cache.ExactFloor(key)
	// Back off only when the source was below a floor known before the load
	// began: a load that raced a newer write says nothing about the source.
	if f := r.fence.exact; r.version < f && g.stale.note(key, f, r.version, time.Now()) {
		g.n.cfg.Logger.Warn("key's floor stays above its source: failing its reads fast",
			"group", g.name, "key", key, "floor", floor, "source_version", r.version, "backoff", staleBackoff,
			"hint", "a version above the row's was invalidated (wrong units? a forged request?), or the source lags; it clears when the source reaches the floor or the floor is forgotten (FloorRetention)")
	}
	return zero, none, &StaleError{Group: g.name, Key: key, Version: r.version, Floor: floor}
}

// refreshSample: one hit in refreshSample+1 of an entry with a TTL runs the
// early-refresh test, so the hot path rarely reads the clock.
const refreshSample = 15

// expired reports whether e's TTL has ended (for StaleOnError groups, whose
// entries outlive it in the store).
func (g *Group[V]) expired(e *local.Entry[V]) bool {
	return e.ExpireAt != 0 && g.cache.Now() >= e.ExpireAt
}

// maybeRefresh runs XFetch (probabilistic early expiration, Vattani et al.):
// reload in the background when now - LoadTime*beta*ln(U) >= ExpireAt, so a
// key read often is refreshed shortly before it expires, one load at a time.
func (g *Group[V]) maybeRefresh(key string, e *local.Entry[V]) {
	delta := float64(max(e.LoadTime, time.Millisecond))
	if float64(g.cache.Now())-delta*g.beta*math.Log(1-rand.Float64()) < float64(e.ExpireAt) {
		return
	}
	// One refresh per stored entry: until the refreshed entry is visible
	// (ristretto applies Sets asynchronously) readers still see this one.
	if e.ClaimRefresh() && g.startRefresh(key) {
		g.ctr.inc(cEarlyRefreshes)
	}
}

// staleOnError returns key's expired value if it ended less than
// MaxStaleness ago and was never invalidated (the store refuses those).
func (g *Group[V]) staleOnError(key string) (V, readInfo, bool) {
	var zero V
	e, ok := g.cache.Get(key)
	if ok {
		g.ctr.inc(cInnerLookups) // counted as its Get's miss already
	}
	if !ok || e.Absent || e.ExpireAt == 0 || g.cache.Now()-e.ExpireAt > int64(g.n.cfg.MaxStaleness) {
		return zero, readInfo{}, false
	}
	g.ctr.inc(cStaleServed)
	info := g.hitInfo(e)
	info.from = FromStale
	return e.Value, info, true
}
