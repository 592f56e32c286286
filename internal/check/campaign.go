package check

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
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
)

// AllFaults returns every fault, in a campaign's default order.
func AllFaults() []Fault {
	return []Fault{FaultLoss1, FaultLoss5, FaultLoss20, FaultLoss50, FaultDelay, FaultDupReor,
		FaultIsolate, FaultHalves, FaultSlowDB, FaultDBError}
}

// CampaignConfig configures [RunCampaign]. Zero fields take the default beside them.
type CampaignConfig struct {
	Seed         int64         // schedule and workload seed
	Nodes        int           // cluster size; 0 = 4
	Keys         int           // 0 = 16
	Readers      int           // reader goroutines per node; 0 = 2
	Writers      int           // writer goroutines, each writing through a random node; 0 = 4
	AckAllEvery  int           // one write in AckAllEvery waits for every member (AckAll); 0 = 4
	Faults       []Fault       // the schedule, one phase each; nil = AllFaults()
	Duration     time.Duration // repeat the schedule until this long has passed; 0 = one pass
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
	case c.Phase < 0 || c.Converge < 0 || c.MaxStaleness < 0 || c.ReadPause < 0 || c.Duration < 0:
		return errors.New("check: durations must not be negative")
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
	name string
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
	ms, err := startCluster(ctx, cfg, nw, src, rec)
	defer func() {
		for _, m := range ms {
			m.n.Close(context.Background())
		}
	}()
	if err != nil {
		return Report{}, nil, err
	}
	b := &memCluster{cfg: cfg, nw: nw, src: src, ms: ms, rec: rec, rng: rng}
	p := plan[Fault]{
		params:      Params{Seed: cfg.Seed, MaxStaleness: cfg.MaxStaleness, Slack: cfg.MaxStaleness / 2},
		faults:      cfg.Faults,
		duration:    cfg.Duration,
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
	ms  []*cmember
	rec *Recorder
	rng *lockedRand // the faults', shared with the source's loaders
}

func (c *memCluster) nodes() int                { return len(c.ms) }
func (c *memCluster) pickUp(rng *rand.Rand) int { return rng.IntN(len(c.ms)) }
func (c *memCluster) source(_ context.Context, key string) (uint64, error) {
	return c.src.current(key), nil
}

func (c *memCluster) read(ctx context.Context, i int, key string) (uint64, error) {
	m := c.ms[i]
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
	m := c.ms[i]
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
	c.rec.Write(m.name, key, ver, commit, start, c.rec.Now(), ack, err)
	return err
}

func (c *memCluster) trust(_ context.Context, i int) (string, bool, bool) {
	return c.ms[i].name, c.ms[i].n.Trusted(), true
}

func (c *memCluster) ready(_ context.Context, i int) (string, string) {
	m := c.ms[i]
	if !m.n.Trusted() {
		return m.name, m.name + " does not trust its cache"
	}
	return m.name, ""
}

var campaigns atomic.Int64 // campaigns started by this process

func startCluster(ctx context.Context, cfg CampaignConfig, nw *gossiptest.Network, src *source, rec *Recorder) ([]*cmember, error) {
	var ms []*cmember
	var seed string
	// A name of its own (two campaigns in one process, or test packages
	// running at once, never take each other's nodes for peers when a port
	// is reused; see node.Config.Cluster).
	cluster := fmt.Sprintf("check-%d-%d", os.Getpid(), campaigns.Add(1))
	for i := range cfg.Nodes {
		tr, err := nw.Loopback()
		if err != nil {
			return ms, err
		}
		name := "n" + strconv.Itoa(i)
		nc := node.DefaultLocalConfig(name)
		nc.Cluster = cluster
		nc.Transport = tr
		nc.MaxStaleness = cfg.MaxStaleness
		nc.LoadTimeout = 2 * time.Second
		nc.Logger = cfg.Logger.With("node", name)
		nc.Observer = observer{rec: rec, node: name}
		if i > 0 {
			nc.Join = []string{seed}
		} else {
			seed = tr.Addr()
		}
		n, err := node.Start(ctx, nc)
		if err != nil {
			tr.Shutdown()
			return ms, fmt.Errorf("check: start %s: %w", name, err)
		}
		g, err := node.NewGroup(n, "rows", node.GroupConfig[string]{Loader: loader{s: src, node: name}})
		if err != nil {
			n.Close(context.Background())
			return ms, fmt.Errorf("check: group on %s: %w", name, err)
		}
		ms = append(ms, &cmember{name: name, addr: tr.Addr(), n: n, g: g})
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
	src.slow.Store(0)
	src.errp.Store(0)
	rec.Add(Event{Kind: KindFault, Fault: string(f), Nodes: cut, Start: start, End: rec.Now()})
	return nil
}
