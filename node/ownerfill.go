package node

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/nearcache/nearcache/node/internal/peer"
)

// serveFill answers a peer that believes this node owns a key.
func (n *Node) serveFill(ctx context.Context, req *peer.Request) peer.Response {
	g := n.group(req.Group)
	if g == nil {
		return peer.Response{Status: peer.StatusError, Err: "unknown group " + strconv.Quote(req.Group)}
	}
	if n.closed.Load() {
		return peer.Response{Status: peer.StatusError, Err: "closing"}
	}
	return g.serveFill(ctx, req.Key, req.Floor)
}

// askOwner asks the key's owner at addr; ok=false means "load locally".
func (g *Group[V]) askOwner(ctx context.Context, addr, key string, floor uint64) (v V, version uint64, ok bool, err error) {
	rctx, cancel := context.WithTimeout(ctx, g.n.cfg.OwnerTimeout)
	resp, rerr := g.n.peerCl.Fill(rctx, addr, peer.Request{Group: g.name, Key: key, Floor: floor})
	cancel()
	switch {
	case rerr != nil:
		kind := cOwnerTransport
		if errors.Is(rerr, context.DeadlineExceeded) || errors.Is(rerr, context.Canceled) {
			kind = cOwnerTimeout
			if ctx.Err() != nil { // our own caller's budget ended: not the owner's fault
				return v, 0, false, ctx.Err()
			}
		}
		g.ctr.inc(kind)
	case resp.Status == peer.StatusOK:
		val, derr := g.cfg.Codec.Decode(resp.Value)
		if derr == nil {
			return val, resp.Version, true, nil
		}
		g.ctr.inc(cOwnerTransport)
	case resp.Status == peer.StatusNotFound:
		return v, resp.Version, true, errOwnerNotFound
	case resp.Status == peer.StatusBelowFloor && floor > 0 && resp.Version < floor:
		// The owner's source is below our floor too: loading here would
		// only add a load (the source is shared). Final, and stale.
		return v, resp.Version, true, errOwnerBelowFloor
	case resp.Status == peer.StatusRefused:
		g.ctr.inc(cOwnerRefused)
	default: // Error, Overloaded, a BelowFloor that makes no sense
		g.ctr.inc(cOwnerError)
	}
	return v, 0, false, nil
}

// errOwnerNotFound is the owner's "the source has no such key".
var errOwnerNotFound = notFoundError{}

// errOwnerBelowFloor is the owner's "the source returned a version below
// your floor".
var errOwnerBelowFloor = errors.New("node: the owner's source is below the floor")

type notFoundError struct{}

func (notFoundError) Error() string  { return "node: not found (answered by the key's owner)" }
func (notFoundError) NotFound() bool { return true }

// serveFill is the owner's side: apply the requester's floor, then answer from
// memory or from one coalesced local load.
func (g *Group[V]) serveFill(ctx context.Context, key string, floor uint64) peer.Response {
	if r, done := g.serveFromMemory(key, floor); done {
		return r
	}
	return g.serveLoad(ctx, key, floor)
}

// serveFromMemory answers a fill request without loading, when it can: a
// bad key or floor, a cached value at or above the floor, a key backing
// off. done=false: load it (serveLoad).
func (g *Group[V]) serveFromMemory(key string, floor uint64) (r peer.Response, done bool) {
	if err := validKey("key", key); err != nil {
		return peer.Response{Status: peer.StatusError, Err: err.Error()}, true
	}
	g.ctr.inc(cFillsServed)
	if floor > MaxVersion || !g.plausible(floor) {
		g.ctr.inc(cVersionsRefused)
		return peer.Response{Status: peer.StatusError, Err: "node: fill request floor out of range"}, true
	}
	if floor > 0 && g.cfg.Versioning == ClockVersions {
		g.n.clock.observe(floor)
	}
	// The requester's floor fences this answer only: it does not raise the
	// owner's (a floor above what the source returns would otherwise be
	// renewed by every request, poisoning the key here too). The owner hears
	// the invalidation itself.
	if g.servable() {
		e, ok := g.cache.Get(key)
		if ok {
			g.ctr.inc(cInnerLookups) // a peer's fill, not a Get here
		}
		if ok && !g.expired(e) {
			if e.Version >= floor {
				if e.Absent {
					return peer.Response{Status: peer.StatusNotFound, Version: e.Version}, true
				}
				return g.encodeResponse(e.Value, e.Version), true
			}
		}
	}
	if rec, st := g.stale.check(key, floor, time.Now()); st == staleBackingOff {
		g.ctr.inc(cStaleFastFails)
		return peer.Response{Status: peer.StatusBelowFloor, Version: rec.got}, true
	}
	return r, false
}

// serveLoad answers a fill request from one coalesced local load.
func (g *Group[V]) serveLoad(ctx context.Context, key string, floor uint64) peer.Response {
	r, err := g.ownerFill(ctx, key)
	if err != nil {
		return peer.Response{Status: peer.StatusError, Err: err.Error()}
	}
	if r.err != nil {
		if IsNotFound(r.err) {
			return peer.Response{Status: peer.StatusNotFound}
		}
		if errors.Is(r.err, ErrOverloaded) {
			return peer.Response{Status: peer.StatusOverloaded, Err: r.err.Error()}
		}
		return peer.Response{Status: peer.StatusError, Err: r.err.Error()}
	}
	if r.version < floor || !g.admits(key, r.fence, r.version) {
		if r.version < floor {
			g.stale.note(key, floor, r.version, time.Now()) // answer the next requests without loading
		}
		return peer.Response{Status: peer.StatusBelowFloor, Version: r.version}
	}
	return g.encodeResponse(r.val, r.version)
}

func (g *Group[V]) encodeResponse(v V, version uint64) peer.Response {
	b, err := g.cfg.Codec.Encode(v)
	if err != nil {
		return peer.Response{Status: peer.StatusError, Err: "encode: " + err.Error()}
	}
	return peer.Response{Status: peer.StatusOK, Version: version, Value: b}
}
