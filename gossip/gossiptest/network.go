package gossiptest

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Errors returned by transports. They are wrapped with the addresses involved;
// match them with errors.Is.
var (
	// ErrClosed is returned by a Transport after Shutdown.
	ErrClosed = errors.New("gossiptest: closed")
	// ErrPartitioned is returned by a dial across a partition.
	ErrPartitioned = errors.New("gossiptest: partitioned")
	// ErrRefused is returned by a dial to an address nobody listens on.
	ErrRefused = errors.New("gossiptest: connection refused")
)

// queueLen is the capacity of a transport's packet queue; a packet for a full
// queue is dropped, like UDP.
const queueLen = 1024

// Network is a set of transports and the fault rules between them. The zero
// value is not usable; use New.
type Network struct {
	stats counters

	// mu guards everything below.
	mu sync.Mutex
	// rng draws drop, duplicate and delay decisions.
	rng      *rand.Rand
	drop     float64
	dup      float64
	delayMin time.Duration
	delayMax time.Duration
	// group maps an address to its partition group; nil means no partition.
	// Addresses missing from a non-nil map are in group -1 together.
	group map[string]int
	// blocked holds the one-way packet blocks (from, to), see Block.
	blocked map[[2]string]bool
	// transports holds the in-memory transports by normalized address.
	transports map[string]*Transport
	// conns holds every open stream end (in-memory ends and wrapped dials).
	conns map[*conn]struct{}
}

type counters struct {
	sent, delivered, dropped, duplicated atomic.Uint64
	opened, refused, cut                 atomic.Uint64
}

// Stats is a snapshot of a Network's counters.
//
// For in-memory transports, once no delayed packet is pending,
// PacketsSent+PacketsDuplicated == PacketsDelivered+PacketsDropped. For a
// wrapped transport "delivered" means handed to the inner transport, and
// packets dropped on receipt by a partition are also counted as dropped.
type Stats struct {
	PacketsSent       uint64 // packets written (WriteTo/WriteToAddress) by any transport
	PacketsDelivered  uint64 // packet copies put in a receive queue (or handed to an inner transport)
	PacketsDropped    uint64 // by the drop rule, a partition, no listener, a full queue or Shutdown
	PacketsDuplicated uint64 // extra copies made by the duplicate rule
	StreamsOpened     uint64 // dials that returned a connection
	StreamsRefused    uint64 // dials that failed: partition, no listener, timeout, Shutdown
	StreamsCut        uint64 // open stream ends closed by a partition
}

// New returns an empty Network without faults. seed drives every random
// decision (a PCG source), so a run with the same seed and the same sequence
// of sends makes the same decisions.
func New(seed int64) *Network {
	return &Network{
		rng:        rand.New(rand.NewPCG(uint64(seed), 0x9e3779b97f4a7c15)),
		transports: make(map[string]*Transport),
		conns:      make(map[*conn]struct{}),
	}
}

// SetDrop makes every packet dropped with probability p (clamped to [0, 1]).
func (n *Network) SetDrop(p float64) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.drop = clamp01(p)
}

// SetDuplicate makes every delivered packet delivered twice with probability p
// (clamped to [0, 1]).
func (n *Network) SetDuplicate(p float64) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.dup = clamp01(p)
}

// SetDelay delays every packet copy by a uniform random duration in [min, max].
// Copies with different delays overtake each other, so this also reorders.
// Negative values count as zero; max below min counts as min. SetDelay(0, 0)
// delivers at once.
func (n *Network) SetDelay(min, max time.Duration) {
	n.mu.Lock()
	defer n.mu.Unlock()
	min = maxDur(min, 0)
	n.delayMin, n.delayMax = min, maxDur(max, min)
}

// Partition splits the network: addresses in different groups cannot exchange
// packets, cannot dial each other, and the streams already open between them
// are closed. Addresses not listed form one more group among themselves. A new
// call replaces the previous partition; Partition() with no group heals.
func (n *Network) Partition(groups ...[]string) {
	var g map[string]int
	if len(groups) > 0 {
		g = make(map[string]int)
		for i, grp := range groups {
			for _, a := range grp {
				g[normalize(a)] = i
			}
		}
	}
	n.mu.Lock()
	n.group = g
	var cut []*conn
	for c := range n.conns {
		if !n.allowedLocked(c.local, c.remote) {
			cut = append(cut, c)
		}
	}
	n.mu.Unlock()
	n.stats.cut.Add(uint64(len(cut)))
	for _, c := range cut {
		_ = c.Close()
	}
}

// Block drops every packet from -> to, one way; streams are not affected.
// It stands for a peer that still takes the other for dead and sends it
// nothing, or a firewall that drops one direction of UDP. Unblock undoes it.
func (n *Network) Block(from, to string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.blocked == nil {
		n.blocked = make(map[[2]string]bool)
	}
	n.blocked[[2]string{normalize(from), normalize(to)}] = true
}

// Unblock lets packets from -> to through again.
func (n *Network) Unblock(from, to string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	delete(n.blocked, [2]string{normalize(from), normalize(to)})
}

// Isolate partitions addr from every other address.
func (n *Network) Isolate(addr string) { n.Partition([]string{addr}) }

// Heal removes any partition.
func (n *Network) Heal() { n.Partition() }

// Stats returns a snapshot of the counters.
func (n *Network) Stats() Stats {
	return Stats{
		PacketsSent:       n.stats.sent.Load(),
		PacketsDelivered:  n.stats.delivered.Load(),
		PacketsDropped:    n.stats.dropped.Load(),
		PacketsDuplicated: n.stats.duplicated.Load(),
		StreamsOpened:     n.stats.opened.Load(),
		StreamsRefused:    n.stats.refused.Load(),
		StreamsCut:        n.stats.cut.Load(),
	}
}

// allowed reports whether from and to are on the same side of the partition.
func (n *Network) allowed(from, to string) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.allowedLocked(from, to)
}

func (n *Network) allowedLocked(from, to string) bool {
	if n.group == nil || from == to {
		return true
	}
	gf, ok := n.group[from]
	if !ok {
		gf = -1
	}
	gt, ok := n.group[to]
	if !ok {
		gt = -1
	}
	return gf == gt
}

// plan decides the fate of one packet from -> to: nil when it is dropped (by a
// partition or the drop rule), else the delay of each copy to deliver.
func (n *Network) plan(from, to string) []time.Duration {
	n.stats.sent.Add(1)
	n.mu.Lock()
	defer n.mu.Unlock()
	if !n.allowedLocked(from, to) || n.blocked[[2]string{from, to}] || (n.drop > 0 && n.rng.Float64() < n.drop) {
		n.stats.dropped.Add(1)
		return nil
	}
	copies := 1
	if n.dup > 0 && n.rng.Float64() < n.dup {
		copies = 2
		n.stats.duplicated.Add(1)
	}
	delays := make([]time.Duration, copies)
	for i := range delays {
		d := n.delayMin
		if span := n.delayMax - n.delayMin; span > 0 {
			d += time.Duration(n.rng.Int64N(int64(span) + 1))
		}
		delays[i] = d
	}
	return delays
}

// parseAddr checks that addr is "ip:port" and returns it in canonical form.
func parseAddr(addr string) (string, net.IP, int, error) {
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return "", nil, 0, fmt.Errorf("gossiptest: address %q: %w", addr, err)
	}
	ip := net.ParseIP(host)
	if ip == nil {
		return "", nil, 0, fmt.Errorf("gossiptest: address %q: host is not an IP address", addr)
	}
	if ip4 := ip.To4(); ip4 != nil {
		ip = ip4
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port < 1 || port > 65535 {
		return "", nil, 0, fmt.Errorf("gossiptest: address %q: port must be 1-65535", addr)
	}
	return net.JoinHostPort(ip.String(), strconv.Itoa(port)), ip, port, nil
}

// normalize returns addr in canonical form, or unchanged if it does not parse,
// so rules match however the address was spelled.
func normalize(addr string) string {
	if s, _, _, err := parseAddr(addr); err == nil {
		return s
	}
	return addr
}

func clamp01(p float64) float64 {
	switch {
	case p > 1:
		return 1
	case p > 0:
		return p
	default: // also NaN
		return 0
	}
}

func maxDur(a, b time.Duration) time.Duration {
	if a > b {
		return a
	}
	return b
}
