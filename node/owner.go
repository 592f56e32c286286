package node

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/nearcache/nearcache/gossip"
	"github.com/nearcache/nearcache/node/internal/peer"
	"github.com/nearcache/nearcache/node/internal/ring"
)

// Owner fills (G6). Each key has one owner among the live members, chosen by
// consistent hashing over their names. On a miss a node asks the key's owner
// over the peer channel (package peer: framed, pooled, HMAC-authenticated
// TCP), and only the owner calls the loader, once, for everybody; the owner
// coalesces concurrent requests and answers from its memory when it can.
// The requester stores what it gets only above its own floor, with the fences
// it captured before asking, so an invalidation that lands anywhere mid-fill
// still wins (G8 across the network). When the owner is unreachable, slow
// (OwnerTimeout) or refuses, the requester falls back to loading itself,
// coalesced per node, and counts it.
//
// Groups with Tags do not use owner fills: tag versions are local counters,
// so a requester could not tell whether the owner's value predates a tag bump
// it has already applied.

// metaVersion is the first byte of the memberlist metadata nearcache sends:
// then the peer-fill port (uvarint, 0 = none), then the user's Config.Meta.
const metaVersion = 1

func encodeMeta(fillPort int, user []byte) []byte {
	b := []byte{metaVersion}
	b = binary.AppendUvarint(b, uint64(fillPort))
	return append(b, user...)
}

// decodeMeta splits metadata into the fill port and the user's part; foreign
// or malformed metadata yields port 0 (no owner fills to that member).
func decodeMeta(b []byte) (port int, user []byte) {
	if len(b) < 2 || b[0] != metaVersion {
		return 0, b
	}
	p, n := binary.Uvarint(b[1:])
	if n <= 0 || p > 65535 {
		return 0, b
	}
	return int(p), b[1+n:]
}

// owners is an immutable snapshot of who owns what, swapped on every
// membership change.
type owners struct {
	ring  *ring.Ring
	addrs map[string]string // member name -> peer-fill address; absent = cannot ask it
}

// ownerOf returns the address to ask for key of group, or "" when this node
// owns it or cannot ask its owner.
func (n *Node) ownerOf(group, key string) string {
	o := n.owners.Load()
	if o == nil || o.ring.Len() < 2 {
		return ""
	}
	name := o.ring.Owner(group + "\x00" + key)
	if name == n.cfg.Name {
		return ""
	}
	return o.addrs[name]
}

// isMember reports whether name is a current member (for the peer server).
func (n *Node) isMember(name string) bool {
	o := n.owners.Load()
	if o == nil {
		return false
	}
	_, ok := o.addrs[name]
	return ok || name == n.cfg.Name
}

// updateOwners rebuilds the ring from a member list.
func (n *Node) updateOwners(members []gossip.Member) {
	names := make([]string, 0, len(members))
	addrs := make(map[string]string, len(members))
	for _, m := range members {
		names = append(names, m.Name)
		port, _ := decodeMeta(m.Meta)
		if port == 0 || m.Name == n.cfg.Name {
			continue
		}
		host, _, err := net.SplitHostPort(m.Addr)
		if err != nil {
			continue
		}
		addrs[m.Name] = net.JoinHostPort(host, strconv.Itoa(port))
	}
	n.owners.Store(&owners{ring: ring.New(names, 0), addrs: addrs})
}

// startPeers opens the peer-fill server and client; it returns the port to
// advertise (0 when owner fills are off).
func (n *Node) startPeers() (int, error) {
	if n.cfg.Standalone || n.cfg.DisableOwnerFills {
		return 0, nil
	}
	srv, err := peer.Listen(peer.ServerConfig{
		Addr:      n.cfg.FillAddr,
		SecretKey: n.cfg.SecretKey,
		Handler:   peer.HandlerFunc(n.serveFill),
		IsMember:  n.isMember,
		Timeout:   n.cfg.LoadTimeout + time.Second,
		Logger:    n.cfg.Logger.With("component", "peer"),
	})
	if err != nil {
		return 0, fmt.Errorf("node: peer fill listener: %w", err)
	}
	cl, err := peer.NewClient(peer.ClientConfig{Name: n.cfg.Name, SecretKey: n.cfg.SecretKey})
	if err != nil {
		srv.Close()
		return 0, fmt.Errorf("node: peer fill client: %w", err)
	}
	n.peerSrv, n.peerCl = srv, cl
	_, p, _ := net.SplitHostPort(srv.Addr())
	port, _ := strconv.Atoi(p)
	return port, nil
}

func (n *Node) closePeers() {
	if n.peerCl != nil {
		n.peerCl.Close()
	}
	if n.peerSrv != nil {
		n.peerSrv.Close()
	}
}

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

// fillCounters counts fills by where the value came from.
type fillCounters struct {
	local, owner, fallback, served atomic.Uint64
	rpcErrors                      [numRPCErrors]atomic.Uint64
}

// RPC error kinds, for GroupStats.OwnerErrors.
const (
	rpcTransport  = iota // dial, i/o, decode, auth: the owner could not be reached or understood
	rpcTimeout           // no answer within OwnerTimeout
	rpcRefused           // the owner refused us (membership, key)
	rpcOwnerError        // the owner answered with an error or overload
	numRPCErrors
)

// askOwner asks the key's owner at addr; ok=false means "load locally".
func (g *Group[V]) askOwner(ctx context.Context, addr, key string, floor uint64) (v V, version uint64, ok bool, err error) {
	rctx, cancel := context.WithTimeout(ctx, g.n.cfg.OwnerTimeout)
	resp, rerr := g.n.peerCl.Fill(rctx, addr, peer.Request{Group: g.name, Key: key, Floor: floor})
	cancel()
	switch {
	case rerr != nil:
		kind := rpcTransport
		if errors.Is(rerr, context.DeadlineExceeded) || errors.Is(rerr, context.Canceled) {
			kind = rpcTimeout
			if ctx.Err() != nil { // our own caller's budget ended: not the owner's fault
				return v, 0, false, ctx.Err()
			}
		}
		g.fills.rpcErrors[kind].Add(1)
	case resp.Status == peer.StatusOK:
		val, derr := g.cfg.Codec.Decode(resp.Value)
		if derr == nil {
			return val, resp.Version, true, nil
		}
		g.fills.rpcErrors[rpcTransport].Add(1)
	case resp.Status == peer.StatusNotFound:
		return v, resp.Version, true, errOwnerNotFound
	case resp.Status == peer.StatusRefused:
		g.fills.rpcErrors[rpcRefused].Add(1)
	default: // Error, Overloaded, BelowFloor
		g.fills.rpcErrors[rpcOwnerError].Add(1)
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
	g.fills.served.Add(1)
	if floor > 0 {
		if g.cfg.Versioning == ClockVersions {
			g.n.clock.observe(floor)
		}
		g.cache.Raise(key, floor) // the requester knows a newer version was committed
	}
	if g.n.servable() {
		if e, ok := g.cache.Get(key); ok && e.Version >= floor && !g.expired(e) {
			if e.Absent {
				return peer.Response{Status: peer.StatusNotFound, Version: e.Version}
			}
			return g.encodeResponse(e.Value, e.Version)
		}
	}
	r, err := g.sharedFillMode(ctx, key, true)
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
	if r.version < floor || !g.current(key, r) {
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
