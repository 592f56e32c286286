package node

import (
	"encoding/binary"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/nearcache/nearcache/gossip"
	"github.com/nearcache/nearcache/node/internal/peer"
	"github.com/nearcache/nearcache/node/internal/ring"
)

// Owner fills (G6). Each key has one owner among the live members, chosen by
// consistent hashing over their names. On a miss a node asks the key's owner
// over the peer channel (package peer: framed, pooled TCP; with a key,
// AES-GCM sessions bound to the target's name, replay-proof), and only the owner calls the loader, once, for everybody; the owner
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
	names map[string]string // peer-fill address -> member name (the keyed channel's target)
}

// memberAt returns the name of the member whose fill port is addr, or "".
func (n *Node) memberAt(addr string) string {
	o := n.owners.Load()
	if o == nil {
		return ""
	}
	return o.names[addr]
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
	byAddr := make(map[string]string, len(addrs))
	for name, a := range addrs {
		byAddr[a] = name
	}
	n.owners.Store(&owners{ring: ring.New(names, 0), addrs: addrs, names: byAddr})
	if n.peerCl != nil {
		// The pooled connections to owners that departed (or moved) would
		// only fail their next fill: close them now.
		live := make(map[string]bool, len(addrs))
		for _, a := range addrs {
			live[a] = true
		}
		n.peerCl.CloseIdleExcept(func(addr string) bool { return live[addr] })
	}
}

// startPeers opens the peer-fill server (on Config.FillListener, else TCP on
// FillAddr) and client (dialing with Config.FillDial, else TCP); it returns
// the port to advertise (0 when owner fills are off). Peers dial that port at
// this node's gossip host (updateOwners).
func (n *Node) startPeers() (int, error) {
	if n.cfg.Standalone || n.cfg.DisableOwnerFills {
		return 0, nil
	}
	srv, err := peer.Listen(peer.ServerConfig{
		Addr:     n.cfg.FillAddr,
		Listener: n.cfg.FillListener, // nil = TCP on FillAddr
		Keyring:  subkeys(n.cfg.keyring(), infoFill),
		Name:     n.cfg.Name,
		Handler:  fillHandler{n},
		IsMember: n.isMember,
		Timeout:  n.cfg.LoadTimeout + time.Second,
		Logger:   n.cfg.Logger.With("component", "peer"),
	})
	if err != nil {
		return 0, fmt.Errorf("node: peer fill listener: %w", err)
	}
	_, p, err := net.SplitHostPort(srv.Addr())
	port, perr := strconv.Atoi(p)
	if err != nil || perr != nil || port < 1 || port > 65535 {
		srv.Close()
		return 0, fmt.Errorf("node: peer fill listener address %q has no port peers can dial", srv.Addr())
	}
	cl, err := peer.NewClient(peer.ClientConfig{Name: n.cfg.Name, Keyring: subkeys(n.cfg.keyring(), infoFill),
		Target: n.memberAt, Dial: n.cfg.FillDial})
	if err != nil {
		srv.Close()
		return 0, fmt.Errorf("node: peer fill client: %w", err)
	}
	n.peerSrv, n.peerCl = srv, cl
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
