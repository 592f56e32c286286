package node

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nearcache/nearcache/gossip"
	"github.com/nearcache/nearcache/node/internal/peer"
	"github.com/nearcache/nearcache/node/internal/trust"
)

// Node is one member of a nearcache cluster: it holds the groups' local caches
// and keeps them honest with the invalidations it hears. Create it with
// [Start]; it is safe for concurrent use.
type Node struct {
	cfg     Config
	cluster *gossip.Cluster // nil when Standalone
	clock   hlc

	owners  atomic.Pointer[owners] // the ring and peer addresses; nil until members are known
	peerSrv *peer.Server           // answers peers' fills; nil when owner fills are off
	peerCl  *peer.Client           // asks owners; nil when owner fills are off

	loadSlots chan struct{} // a token per running loader call (MaxConcurrentLoads)

	// trusted is the watchdog's last verdict (G5). Reads go by the lease
	// instead: cached values may be served until trustUntil (monotonic ns
	// since epoch; 0 = not trusted, forever = Standalone), which each good
	// verdict extends by trustLease. A process frozen past its lease (SIGSTOP,
	// a VM pause) serves nothing cached when it wakes, before its watchdog
	// has run again: the verdict alone would still say yes.
	trusted    atomic.Bool
	trustUntil atomic.Int64
	wd         watchdog // the trust machine; unused when Standalone
	epoch      time.Time
	closed     atomic.Bool

	closing context.Context // cancelled by Close: cuts loads short, stops the watchdog
	cancel  context.CancelFunc
	watchWG sync.WaitGroup

	// fmu guards flights and closedFlights: loads in progress, drained by Close.
	fmu           sync.Mutex
	flights       sync.WaitGroup
	inflight      atomic.Int64 // what flights counts, readable: Close says how many it cut short
	closedFlights bool

	// gmu guards groups and pending.
	gmu    sync.RWMutex
	groups map[string]groupHandle
	// pending holds invalidations for groups not created yet (they arrive
	// while a node joins, before the service has called NewGroup), so a group
	// starts with the floors the cluster already knows. Bounded by maxPending.
	pending map[string][]gossip.Invalidation
	npend   int

	members            atomic.Int64
	degradedTransition atomic.Uint64
	unknownGroup       atomic.Uint64

	closeOnce sync.Once
	closeErr  error
}

// initialJoinTimeout bounds Start's first join when ctx has no deadline.
const initialJoinTimeout = 10 * time.Second

// Start validates cfg, joins the cluster (unless Standalone) and returns a
// running node. It tries the seeds until one answers or ctx ends (at most 10s
// when ctx has no deadline); if none answered, the node keeps trying in the
// background and serves reads from the loader until it has caught up with a
// peer (see MaxStaleness).
func Start(ctx context.Context, cfg Config) (*Node, error) {
	return start(ctx, cfg, nil)
}

// start is Start; pause, when not nil, runs before each trust step (tests
// freeze the watchdog with it).
func start(ctx context.Context, cfg Config, pause func()) (*Node, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	n := &Node{cfg: cfg, groups: make(map[string]groupHandle), loadSlots: make(chan struct{}, cfg.MaxConcurrentLoads)}
	n.closing, n.cancel = context.WithCancel(context.Background())
	n.members.Store(1)
	n.epoch = time.Now()
	if cfg.Standalone {
		n.trusted.Store(true)
		n.trustUntil.Store(forever)
	} else {
		port, err := n.startPeers()
		if err != nil {
			n.cancel()
			return nil, err
		}
		// The first join is bounded even when ctx is not: the rejoin loop
		// keeps trying in the background, and until then reads go to the
		// loader (the node has not caught up).
		jctx := ctx
		if _, ok := ctx.Deadline(); !ok {
			var cancel context.CancelFunc
			jctx, cancel = context.WithTimeout(ctx, initialJoinTimeout)
			defer cancel()
		}
		c, err := gossip.Start(jctx, cfg.gossipConfig(port, (*handler)(n)))
		if err != nil {
			n.closePeers()
			n.cancel()
			return nil, fmt.Errorf("node: %w", err)
		}
		n.cluster = c
		n.updateOwners(c.Members())
		// The peers must speak to it after its join.
		m, err := trust.New(n.trustLease(), n.since(time.Now()))
		if err != nil {
			n.closePeers()
			n.cancel()
			_ = c.Close()
			return nil, fmt.Errorf("node: %w", err)
		}
		n.wd.m = m
		n.checkTrust(time.Now())
		n.watchWG.Add(1)
		go n.watch(pause)
	}
	cfg.Observer.Attach(n.Stats)
	return n, nil
}

// Name returns the node's name.
func (n *Node) Name() string { return n.cfg.Name }

// Addr returns the advertised gossip address (host:port); "" when Standalone.
func (n *Node) Addr() string {
	if n.cluster == nil {
		return ""
	}
	return n.cluster.LocalAddr()
}

// Trusted reports whether the node serves cached values now: false while it
// has not heard the cluster within MaxStaleness or has not caught up (G5).
func (n *Node) Trusted() bool { return n.servable() }

// Member is a member of the cluster as this node sees it.
type Member struct {
	Name  string
	Addr  string // host:port
	Meta  []byte
	State string // alive, suspect, dead or left
}

// Members returns the members this node knows, itself included, by name.
func (n *Node) Members() []Member {
	if n.cluster == nil {
		return []Member{{Name: n.cfg.Name, State: "alive"}}
	}
	ms := n.cluster.Members()
	out := make([]Member, len(ms))
	for i, m := range ms {
		_, user := decodeMeta(m.Meta)
		out[i] = Member{Name: m.Name, Addr: m.Addr, Meta: user, State: m.State}
	}
	return out
}

// Join asks the members at addrs to let this node in; it returns how many answered.
func (n *Node) Join(ctx context.Context, addrs []string) (int, error) {
	if n.cluster == nil {
		return 0, errors.New("node: Join on a Standalone node")
	}
	if n.closed.Load() {
		return 0, ErrClosed
	}
	return n.cluster.Join(ctx, addrs)
}

// Close leaves the cluster, waits for loads in flight (at most LoadTimeout,
// and never past ctx), then cuts what still runs short and releases
// everything. Calls on the node and its groups then return ErrClosed. When
// ctx ends first, Close still releases everything (loads are cancelled, the
// leave is skipped or cut to what remains of ctx's deadline, the announce of
// a leave takes at most a second) and returns ctx's error, so peers may see
// this node fail rather than leave. Close is idempotent; later calls return
// the first one's error.
func (n *Node) Close(ctx context.Context) error {
	n.closeOnce.Do(func() { n.closeErr = n.close(ctx) })
	return n.closeErr
}

func (n *Node) close(ctx context.Context) error {
	var errs []error
	if n.cluster != nil {
		if err := n.leave(ctx); err != nil {
			n.cfg.Logger.Warn("leave", "err", err)
			if ctx.Err() != nil { // a failed leave alone is logged, as before: peers detect the departure anyway
				errs = append(errs, err)
			}
		}
	}
	n.closed.Store(true)
	n.fmu.Lock()
	n.closedFlights = true
	n.fmu.Unlock()
	drained := make(chan struct{})
	go func() { n.flights.Wait(); close(drained) }()
	t := time.NewTimer(n.cfg.LoadTimeout)
	select {
	case <-drained:
	case <-t.C:
	case <-ctx.Done():
		if k := n.inflight.Load(); k > 0 {
			errs = append(errs, fmt.Errorf("node: close: %d load(s) in flight cut short: %w", k, ctx.Err()))
		}
	}
	t.Stop()
	n.cancel()
	<-drained
	n.watchWG.Wait()
	n.closePeers()
	if n.cluster != nil {
		if err := n.cluster.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	n.gmu.Lock()
	for _, g := range n.groups {
		g.close()
	}
	n.gmu.Unlock()
	n.cfg.Observer.Detach()
	return errors.Join(errs...)
}

// leave announces the leave and waits up to a second (less if ctx's deadline
// is nearer) for it to spread; nothing when ctx has ended.
func (n *Node) leave(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("node: close: leave skipped: %w", err)
	}
	timeout := time.Second
	if d, ok := ctx.Deadline(); ok {
		timeout = min(timeout, time.Until(d))
	}
	return n.cluster.Leave(max(timeout, time.Millisecond))
}

func (n *Node) startFlight() bool {
	n.fmu.Lock()
	defer n.fmu.Unlock()
	if n.closedFlights {
		return false
	}
	n.flights.Add(1)
	n.inflight.Add(1)
	return true
}

func (n *Node) endFlight() {
	n.inflight.Add(-1)
	n.flights.Done()
}

// acquireLoad waits for a loader slot; release it with releaseLoad.
func (n *Node) acquireLoad(ctx context.Context) error {
	select {
	case n.loadSlots <- struct{}{}:
		return nil
	default:
	}
	select {
	case n.loadSlots <- struct{}{}:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("%w (%d running): %w", ErrOverloaded, cap(n.loadSlots), ctx.Err())
	}
}

func (n *Node) releaseLoad() { <-n.loadSlots }

func (n *Node) addGroup(name string, g groupHandle) error {
	n.gmu.Lock()
	defer n.gmu.Unlock()
	if n.closed.Load() {
		return ErrClosed
	}
	if _, dup := n.groups[name]; dup {
		return fmt.Errorf("node: group %q already exists", name)
	}
	n.groups[name] = g
	for _, inv := range n.pending[name] {
		g.apply(uint8(inv.Kind), inv.Key, inv.Version)
	}
	n.npend -= len(n.pending[name])
	delete(n.pending, name)
	return nil
}

// maxPending bounds the invalidations kept for groups not created yet.
const maxPending = 1 << 16

// park keeps inv for a group not created yet; it reports false if the group
// exists now (the caller applies it) .
func (n *Node) park(inv gossip.Invalidation) (groupHandle, bool) {
	n.gmu.Lock()
	defer n.gmu.Unlock()
	if g := n.groups[inv.Group]; g != nil {
		return g, false
	}
	if n.npend >= maxPending {
		n.unknownGroup.Add(1) // dropped: such a group starts empty, and its loads read the source
		return nil, true
	}
	if n.pending == nil {
		n.pending = make(map[string][]gossip.Invalidation)
	}
	n.pending[inv.Group] = append(n.pending[inv.Group], inv)
	n.npend++
	return nil, true
}

func (n *Node) group(name string) groupHandle {
	n.gmu.RLock()
	defer n.gmu.RUnlock()
	return n.groups[name]
}

func (n *Node) eachGroup(f func(groupHandle)) {
	n.gmu.RLock()
	defer n.gmu.RUnlock()
	for _, g := range n.groups {
		f(g)
	}
}

// publish spreads one invalidation already applied here.
func (n *Node) publish(ctx context.Context, invs []gossip.Invalidation, o WriteOption) error {
	if n.cluster == nil {
		if o.ackedBy != nil {
			*o.ackedBy = nil
		}
		return nil
	}
	if len(invs) == 0 {
		if o.ackedBy != nil {
			*o.ackedBy = nil
		}
		return nil
	}
	if !o.ackAll {
		if err := n.cluster.Publish(ctx, invs); err != nil {
			return fmt.Errorf("node: publish: %w", err)
		}
		return nil
	}
	if h := n.cluster.Health(); !h.Solo && !h.Synced {
		// Published all the same (a peer that hears it applies it), but
		// nobody can be waited for: this node does not know who may serve
		// the key. Not an *AckError: there is no member to name.
		if err := n.cluster.Publish(ctx, invs); err != nil {
			return fmt.Errorf("node: publish: %w", err)
		}
		return fmt.Errorf("node: AckAll on %s: %w", n.cfg.Name, ErrNotJoined)
	}
	waited, err := n.cluster.PublishAckedBy(ctx, invs)
	if o.ackedBy != nil {
		*o.ackedBy = waited
	}
	var ae *gossip.AckError
	if errors.As(err, &ae) {
		return &AckError{Missing: ae.Missing, Err: ctx.Err()}
	}
	if err != nil {
		return fmt.Errorf("node: publish: %w", err)
	}
	return nil
}

// Stats returns a snapshot of the node's counters.
func (n *Node) Stats() Stats {
	s := Stats{Name: n.cfg.Name, Trusted: n.servable(), Members: int(n.members.Load())}
	s.Cluster.DegradedTransition = n.degradedTransition.Load()
	if n.cluster != nil {
		h := n.cluster.Health()
		if !h.OldestHeard.IsZero() {
			s.LastHeard = time.Since(h.OldestHeard)
		}
		cs := n.cluster.Stats()
		s.Cluster.Published = cs.Published
		s.Cluster.Received = cs.Received
		s.Cluster.Duplicates = cs.Duplicates
		s.Cluster.GapsDetected = cs.GapsDetected
		s.Cluster.Repaired = cs.Repaired
		s.Cluster.Unrepairable = cs.Unrepairable
		s.Cluster.PendingGaps = h.PendingGaps
		s.Cluster.MessagesSent = cs.MessagesSent
		s.Cluster.MessagesReceived = cs.MessagesReceived
		s.Cluster.DecodeErrors = cs.DecodeErrors
		s.Cluster.Rejoins = cs.Rejoins
		s.Cluster.Rejected = cs.Rejected
		s.Cluster.StreamsRefused = cs.StreamsRefused
		s.Cluster.StreamsCut = cs.StreamsCut
		s.Cluster.MemberlistErrors = cs.MemberlistErrors
	}
	if n.peerSrv != nil {
		s.FillServer = n.peerSrv.Stats()
	}
	if n.peerCl != nil {
		s.FillClient = n.peerCl.Stats()
	}
	n.eachGroup(func(g groupHandle) { s.Groups = append(s.Groups, g.stats()) })
	slices.SortFunc(s.Groups, func(a, b GroupStats) int { return strings.Compare(a.Name, b.Name) })
	return s
}

// handler receives the gossip layer's callbacks.
type handler Node

func (h *handler) Invalidations(batch []gossip.Invalidation) {
	n := (*Node)(h)
	now := time.Now()
	for _, inv := range batch {
		g := n.group(inv.Group)
		if g == nil {
			var parked bool
			if g, parked = n.park(inv); parked {
				continue
			}
		}
		g.apply(uint8(inv.Kind), inv.Key, inv.Version)
		if inv.SentAt > 0 {
			n.cfg.Observer.ObservePropagation(inv.Group, now.Sub(time.Unix(0, inv.SentAt)))
		}
	}
}

func (h *handler) Unrepairable(origin string) {
	n := (*Node)(h)
	n.cfg.Logger.Warn("invalidations lost for good: purging caches", "origin", origin)
	n.eachGroup(func(g groupHandle) { g.purge() })
}

func (h *handler) MembersChanged(members []gossip.Member) {
	n := (*Node)(h)
	n.members.Store(int64(len(members))) // gossip lists live members (alive or suspect)
	n.updateOwners(members)
	n.cfg.Logger.Debug("members changed", "members", len(members))
}
