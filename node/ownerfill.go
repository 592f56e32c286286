package node

import (
	"context"
	"errors"
	"strconv"

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
	case resp.Status == peer.StatusRefused:
		g.ctr.inc(cOwnerRefused)
	default: // Error, Overloaded, BelowFloor
		g.ctr.inc(cOwnerError)
	}
	return v, 0, false, nil
}

// errOwnerNotFound is the owner's "the source has no such key".
var errOwnerNotFound = notFoundError{}

type notFoundError struct{}

func (notFoundError) Error() string  { return "node: not found (answered by the key's owner)" }
func (notFoundError) NotFound() bool { return true }

// serveFill is the owner's side: apply the requester's floor, then answer from
// memory or from one coalesced local load.
func (g *Group[V]) serveFill(ctx context.Context, key string, floor uint64) peer.Response {
	if err := validKey("key", key); err != nil {
		return peer.Response{Status: peer.StatusError, Err: err.Error()}
	}
	g.ctr.inc(cFillsServed)
	if floor > 0 {
		if g.cfg.Versioning == ClockVersions {
			g.n.clock.observe(floor)
		}
		g.cache.Raise(key, floor) // the requester knows a newer version was committed
	}
	if g.servable() {
		if e, ok := g.cache.Get(key); ok && e.Version >= floor && !g.expired(e) {
			if e.Absent {
				return peer.Response{Status: peer.StatusNotFound, Version: e.Version}
			}
			return g.encodeResponse(e.Value, e.Version)
		}
	}
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
		return peer.Response{Status: peer.StatusBelowFloor}
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
