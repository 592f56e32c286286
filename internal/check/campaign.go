package check

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nearcache/nearcache/gossip/gossiptest"
	"github.com/nearcache/nearcache/node"
)

// Fault is one kind of trouble a campaign injects for a phase.
type Fault string

// The faults a campaign knows.
const (
	FaultNone    Fault = "none"
	FaultLoss1   Fault = "loss-1%"
	FaultLoss5   Fault = "loss-5%"
	FaultLoss20  Fault = "loss-20%"
	FaultLoss50  Fault = "loss-50%"
	FaultDelay   Fault = "delay-0-30ms"
	FaultDupReor Fault = "duplicate-reorder"
	FaultIsolate Fault = "isolate-one"
	FaultHalves  Fault = "split-halves"
	FaultSlowDB  Fault = "slow-database"
	FaultDBError Fault = "database-errors"
	// FaultRestartSilent restarts a member (a graceful leave, then a new
	// process of the same name at a new address) while another member's
	// packets to the new address are lost: that peer never lists the new
	// process, sends it nothing and does not wait for it. The restarted node
	// must not trust its cache meanwhile (issue 11): it reads through. A
	// build that trusts a restarted node at once serves what it cached while
	// that peer's writes go unseen.
	FaultRestartSilent Fault = "restart-silent-peer"
)

// AllFaults returns every fault, in a campaign's default order.
func AllFaults() []Fault {
	return []Fault{FaultLoss1, FaultLoss5, FaultLoss20, FaultLoss50, FaultDelay, FaultDupReor,
		FaultIsolate, FaultHalves, FaultSlowDB, FaultDBError, FaultRestartSilent}
}

// CampaignConfig configures [RunCampaign]. Zero fields take the default beside them.
type CampaignConfig struct {
	Seed         int64         // schedule and workload seed
	Nodes        int           // cluster size; 0 = 4
	Keys         int           // 0 = 16
	Readers      int           // reader goroutines per node; 0 = 2
	Writers      int           // writer goroutines, each writing through a random node; 0 = 4
	AckAllEvery  int           // one write in AckAllEvery waits for every member (AckAll); 0 = 4
	Faults       []Fault       // the schedule, one phase each; nil = AllFaults(); empty = no fault (a healthy run of Duration)
	Duration     time.Duration // repeat the schedule until this long has passed; 0 = one pass
	Calm         time.Duration // healthy time (no fault) before each fault; 0 = none
	Phase        time.Duration // how long each fault lasts; 0 = 3s (partitions get at least 2*MaxStaleness)
	Converge     time.Duration // how long the cluster may take to converge after a fault; 0 = 15s
	MaxStaleness time.Duration // the nodes' MaxStaleness; 0 = 1s
	ReadPause    time.Duration // readers pause this long between reads; 0 = none
	Logger       *slog.Logger  // nil = discard
}

func (c CampaignConfig) withDefaults() CampaignConfig {
	c.Nodes = cmp.Or(c.Nodes, 4)
	c.Keys = cmp.Or(c.Keys, 16)
	c.Readers = cmp.Or(c.Readers, 2)
	c.Writers = cmp.Or(c.Writers, 4)
	c.AckAllEvery = cmp.Or(c.AckAllEvery, 4)
	c.Phase = cmp.Or(c.Phase, 3*time.Second)
	c.Converge = cmp.Or(c.Converge, 15*time.Second)
	c.MaxStaleness = cmp.Or(c.MaxStaleness, time.Second)
	if c.Faults == nil {
		c.Faults = AllFaults()
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

func (c CampaignConfig) validate() error {
	switch {
	case c.Nodes < 0 || c.Keys < 0 || c.Readers < 0 || c.Writers < 0 || c.AckAllEvery < 0:
		return errors.New("check: counts must not be negative")
	case c.Phase < 0 || c.Converge < 0 || c.MaxStaleness < 0 || c.ReadPause < 0 || c.Duration < 0 || c.Calm < 0:
		return errors.New("check: durations must not be negative")
	case c.Faults != nil && len(c.Faults) == 0 && c.Duration == 0:
		return errors.New("check: a run without faults needs a Duration")
	case c.Nodes == 1:
		return errors.New("check: a campaign needs at least 2 nodes")
	}
	return nil
}

// source is the campaign's database: a version per key from one global
// counter, so versions grow with commit order.
type source struct {
	rec  *Recorder
	rng  *lockedRand
	slow atomic.Int64 // max extra delay per load, ns
	errp atomic.Int64 // load failure probability, per mille

	// mu guards ver and rows.
	mu   sync.Mutex
	ver  uint64
	rows map[string]uint64
}

var errInjected = errors.New("injected database error")

// commit writes key, returning its new version and when it committed.
func (s *source) commit(key string) (uint64, int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ver++
	s.rows[key] = s.ver
	return s.ver, s.rec.Now()
}

func (s *source) current(key string) uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rows[key]
}

// loader is one node's connection to the source.
type loader struct {
	s    *source
	node string
}

// Load reads the row, then holds a little (longer under FaultSlowDB) so that
// invalidations can land while the fill is in flight (G8's window).
func (l loader) Load(ctx context.Context, key string) (string, uint64, error) {
	if p := l.s.errp.Load(); p > 0 && l.s.rng.IntN(1000) < int(p) {
		return "", 0, errInjected
	}
	l.s.mu.Lock()
	v := l.s.rows[key]
	l.s.mu.Unlock()
	l.s.rec.Add(Event{Kind: KindLoad, Node: l.node, Key: key, Version: v, Start: l.s.rec.Now()})
	hold := time.Duration(l.s.rng.IntN(2000)) * time.Microsecond
	if d := l.s.slow.Load(); d > 0 {
		hold += time.Duration(l.s.rng.Int64N(d))
	}
	t := time.NewTimer(hold)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
		return "", 0, ctx.Err()
	}
	return strconv.FormatUint(v, 10), v, nil
}

type lockedRand struct {
	mu  sync.Mutex
	rng *rand.Rand
}

func (r *lockedRand) IntN(n int) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.rng.IntN(n)
}

func (r *lockedRand) Int64N(n int64) int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.rng.Int64N(n)
}

// observer records propagation delays.
type observer struct {
	rec  *Recorder
	node string
}

func (observer) Attach(func() node.Stats)                 {}
func (observer) Detach()                                  {}
func (observer) ObserveLoad(string, time.Duration, error) {}
func (o observer) ObservePropagation(_ string, d time.Duration) {
	o.rec.Add(Event{Kind: KindPropagation, Node: o.node, End: int64(d)})
}

type cmember struct {
	name string // in the history: the node's name, with "@<n>" after its n-th restart (another process, as far as G1/G2 go)
	addr string
	n    *node.Node
	g    *node.Group[string]
}

// RunCampaign starts a cluster of cfg.Nodes on 127.0.0.1 (real sockets,
// wrapped by gossiptest for faults), runs the workload through every fault of
// the schedule in turn (each followed by a heal and a convergence check), and
// returns the checker's report and the history. It stops early when ctx ends.
func RunCampaign(ctx context.Context, cfg CampaignConfig) (Report, *History, error) {
	if err := cfg.validate(); err != nil {
		return Report{}, nil, err
	}
	cfg = cfg.withDefaults()
	rec := NewRecorder()
	rng := &lockedRand{rng: rand.New(rand.NewPCG(uint64(cfg.Seed), 0x6e63))}
	src := &source{rec: rec, rng: rng, rows: map[string]uint64{}}
	keys := make([]string, cfg.Keys)
	for i := range keys {
		keys[i] = "k" + strconv.Itoa(i)
		src.commit(keys[i])
	}
	nw := gossiptest.New(cfg.Seed)
	cluster := clusterName()
	ms, err := startCluster(ctx, cfg, nw, src, rec, cluster)
	defer func() {
		for _, m := range ms {
			m.n.Close(context.Background())
		}
	}()
	if err != nil {
		return Report{}, nil, err
	}
	b := &memCluster{cfg: cfg, nw: nw, src: src, ms: ms, rec: rec, rng: rng, cluster: cluster, seed: ms[0].addr}
	p := plan[Fault]{
		params:      Params{Seed: cfg.Seed, MaxStaleness: cfg.MaxStaleness, Slack: cfg.MaxStaleness / 2},
		faults:      cfg.Faults,
		duration:    cfg.Duration,
		calm:        cfg.Calm,
		converge:    cfg.Converge,
		keys:        keys,
		nodeReaders: cfg.Readers,
		readPause:   cfg.ReadPause,
		writers:     cfg.Writers,
		writePause: func(rng *rand.Rand, _ error) time.Duration {
			return time.Duration(1+rng.IntN(3)) * time.Millisecond
		},
		trustPoll:      20 * time.Millisecond,
		trustFromStart: true,
		convergePoll:   20 * time.Millisecond,
		logger:         cfg.Logger,
	}
	var wg sync.WaitGroup
	return drive(ctx, p, rec, &wg, b)
}

// memCluster is RunCampaign's back end: in-process nodes on a gossiptest
// network, over the in-memory source.
type memCluster struct {
	cfg CampaignConfig
	nw  *gossiptest.Network
	src *source
	// mmu guards the elements of ms (FaultRestartSilent replaces one); the
	// slice itself never changes length.
	mmu sync.RWMutex
	ms  []*cmember
	rec *Recorder
	rng *lockedRand // the faults', shared with the source's loaders
	// cluster and seed are what a restarted member joins.
	cluster, seed string
	blocked       [][2]string // Block rules to lift at the phase's end; guarded by mmu
	restarts      int         // FaultRestartSilent's so far (only inject, one at a time, touches it)
}

func (c *memCluster) nodes() int                { return len(c.ms) }
func (c *memCluster) pickUp(rng *rand.Rand) int { return rng.IntN(len(c.ms)) }

// member returns member i as it is now.
func (c *memCluster) member(i int) *cmember {
	c.mmu.RLock()
	defer c.mmu.RUnlock()
	return c.ms[i]
}
func (c *memCluster) source(_ context.Context, key string) (uint64, error) {
	return c.src.current(key), nil
}

func (c *memCluster) read(ctx context.Context, i int, key string) (uint64, error) {
	m := c.member(i)
	start := c.rec.Now()
	rctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	v, err := m.g.Get(rctx, key)
	cancel()
	end := c.rec.Now()
	if ctx.Err() != nil {
		return 0, ctx.Err() // cut short by the end of the run: not a result
	}
	var ver uint64
	if err == nil {
		if ver, err = strconv.ParseUint(v, 10, 64); err != nil {
			err = fmt.Errorf("bad value %q", v)
		}
	}
	c.rec.Read(m.name, key, start, end, ver, err)
	return ver, err
}

// write commits key and invalidates it through node i; one write in
// AckAllEvery is an AckAll call, which gives up after MaxStaleness/2 (it
// fails while a member is cut off).
func (c *memCluster) write(ctx context.Context, i int, key string, _, _ int, rng *rand.Rand) error {
	m := c.member(i)
	ack := rng.IntN(c.cfg.AckAllEvery) == 0
	ver, commit := c.src.commit(key)
	start := c.rec.Now()
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.cfg.MaxStaleness/2)
	var err error
	if ack {
		err = m.g.Invalidate(wctx, key, ver, node.AckAll())
	} else {
		err = m.g.Invalidate(wctx, key, ver)
	}
	cancel()
	writer := m.name
	if errors.Is(err, node.ErrClosed) {
		// The node closed (FaultRestartSilent) before it applied the
		// invalidation: the commit stands, but no writer holds G2 for it.
		writer = ""
	}
	c.rec.Write(writer, key, ver, commit, start, c.rec.Now(), ack, err)
	return err
}

func (c *memCluster) trust(_ context.Context, i int) (string, bool, bool) {
	m := c.member(i)
	return m.name, m.n.Trusted(), true
}

func (c *memCluster) ready(_ context.Context, i int) (string, string) {
	m := c.member(i)
	if !m.n.Trusted() {
		return m.name, m.name + " does not trust its cache"
	}
	return m.name, ""
}

var campaigns atomic.Int64 // campaigns started by this process

// startMember starts member name of cluster on a new transport of nw,
// joining seed ("" = none); before, when not nil, runs with the transport's
// address before the node starts (to set a rule for it).
func startMember(ctx context.Context, cfg CampaignConfig, nw *gossiptest.Network, src *source, rec *Recorder,
	cluster, name, label, seed string, before func(addr string)) (*cmember, error) {
	tr, err := nw.Loopback()
	if err != nil {
		return nil, err
	}
	if before != nil {
		before(tr.Addr())
	}
	nc := node.DefaultLocalConfig(name)
	nc.Cluster = cluster
	nc.Transport = tr
	nc.MaxStaleness = cfg.MaxStaleness
	nc.LoadTimeout = 2 * time.Second
	nc.Logger = cfg.Logger.With("node", label)
	nc.Observer = observer{rec: rec, node: label}
	if seed != "" {
		nc.Join = []string{seed}
	}
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	n, err := node.Start(sctx, nc)
	if err != nil {
		tr.Shutdown()
		return nil, fmt.Errorf("check: start %s: %w", name, err)
	}
	g, err := node.NewGroup(n, "rows", node.GroupConfig[string]{Loader: loader{s: src, node: label}})
	if err != nil {
		n.Close(context.Background())
		return nil, fmt.Errorf("check: group on %s: %w", label, err)
	}
	return &cmember{name: label, addr: tr.Addr(), n: n, g: g}, nil
}

// clusterName is a cluster name of its own (two campaigns in one process,
// or test packages running at once, never take each other's nodes for peers
// when a port is reused; see node.Config.Cluster).
func clusterName() string { return fmt.Sprintf("check-%d-%d", os.Getpid(), campaigns.Add(1)) }

func startCluster(ctx context.Context, cfg CampaignConfig, nw *gossiptest.Network, src *source, rec *Recorder, cluster string) ([]*cmember, error) {
	var ms []*cmember
	var seed string
	for i := range cfg.Nodes {
		name := "n" + strconv.Itoa(i)
		m, err := startMember(ctx, cfg, nw, src, rec, cluster, name, name, seed, nil)
		if err != nil {
			return ms, err
		}
		if i == 0 {
			seed = m.addr
		}
		ms = append(ms, m)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		ok := true
		for _, m := range ms {
			ok = ok && m.n.Trusted() && len(m.n.Members()) == len(ms)
		}
		if ok {
			return ms, nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return ms, errors.New("check: the cluster did not form within 20s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// restartSilent is FaultRestartSilent's start: member i (never the seed)
// leaves and comes back at a new address, which member j's packets do not
// reach until the phase ends. It returns the restarted member's name: cut
// off from j for the phase (G5 applies to its reads).
func (c *memCluster) restartSilent(ctx context.Context) ([]string, error) {
	i := 1 + c.rng.IntN(len(c.ms)-1)
	j := 1 + (i % (len(c.ms) - 1)) // another non-seed member
	old, silent := c.member(i), c.member(j)
	if err := old.n.Close(ctx); err != nil {
		c.cfg.Logger.Warn("restart: close", "node", old.name, "err", err)
	}
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		gone := true
		for k := range c.ms {
			if k != i && slices.ContainsFunc(c.member(k).n.Members(), func(m node.Member) bool { return m.Name == old.n.Name() }) {
				gone = false
			}
		}
		if gone {
			break
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return nil, fmt.Errorf("check: %s still listed 20s after its leave", old.name)
		}
	}
	c.restarts++
	label := old.n.Name() + "@" + strconv.Itoa(c.restarts)
	m, err := startMember(ctx, c.cfg, c.nw, c.src, c.rec, c.cluster, old.n.Name(), label, c.seed, func(addr string) {
		c.nw.Block(silent.addr, addr)
		c.mmu.Lock()
		c.blocked = append(c.blocked, [2]string{silent.addr, addr})
		c.mmu.Unlock()
	})
	if err != nil {
		return nil, err
	}
	c.mmu.Lock()
	c.ms[i] = m
	c.mmu.Unlock()
	c.cfg.Logger.Info("restarted", "node", m.name, "addr", m.addr, "silent", silent.name)
	return []string{m.name}, nil
}

// unblock lifts the rules restartSilent set.
func (c *memCluster) unblock() {
	c.mmu.Lock()
	rules := c.blocked
	c.blocked = nil
	c.mmu.Unlock()
	for _, r := range rules {
		c.nw.Unblock(r[0], r[1])
	}
}

// inject applies f for the phase's length, then heals.
func (c *memCluster) inject(ctx context.Context, f Fault) error {
	cfg, nw, src, ms, rec := c.cfg, c.nw, c.src, c.ms, c.rec
	phase := cfg.Phase
	var cut []string
	switch f {
	case FaultLoss1, FaultLoss5, FaultLoss20, FaultLoss50:
		p, _ := strconv.ParseFloat(string(f[len("loss-"):len(f)-1]), 64)
		nw.SetDrop(p / 100)
	case FaultDelay:
		nw.SetDelay(0, 30*time.Millisecond)
	case FaultDupReor:
		nw.SetDuplicate(0.3)
		nw.SetDelay(0, 5*time.Millisecond)
	case FaultIsolate:
		i := c.rng.IntN(len(ms))
		cut = []string{ms[i].name}
		nw.Isolate(ms[i].addr)
		phase = max(phase, 3*cfg.MaxStaleness)
	case FaultHalves:
		var a, b []string
		for i, m := range ms {
			cut = append(cut, m.name)
			if i < len(ms)/2 {
				a = append(a, m.addr)
			} else {
				b = append(b, m.addr)
			}
		}
		nw.Partition(a, b)
		phase = max(phase, 3*cfg.MaxStaleness)
	case FaultSlowDB:
		src.slow.Store(int64(50 * time.Millisecond))
	case FaultDBError:
		src.errp.Store(200)
	case FaultRestartSilent:
		var err error
		if cut, err = c.restartSilent(ctx); err != nil {
			return err
		}
		phase = max(phase, 3*cfg.MaxStaleness)
	}
	start := rec.Now()
	cfg.Logger.Info("fault", "fault", f, "for", phase)
	t := time.NewTimer(phase)
	select {
	case <-t.C:
	case <-ctx.Done():
		t.Stop()
	}
	nw.SetDrop(0)
	nw.SetDuplicate(0)
	nw.SetDelay(0, 0)
	nw.Heal()
	c.unblock()
	src.slow.Store(0)
	src.errp.Store(0)
	rec.Add(Event{Kind: KindFault, Fault: string(f), Nodes: cut, Start: start, End: rec.Now()})
	return nil
}
