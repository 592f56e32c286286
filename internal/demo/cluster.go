package demo

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/nearcache/nearcache/node"
)

// The demo runs its cluster inside one process, on 127.0.0.1 with real
// sockets. Its point is the cache's behaviour under a shared workload, not
// process isolation: one process lets the workload judge every read against
// every write with one monotonic clock, and keeps Ctrl-C and cleanup trivial
// (one context, one set of deferred Closes). Multi-process clusters come with
// `nearcache node`.

// groupName is the demo's one group.
const groupName = "items"

// cluster is N nearcache nodes over one source, each with an "items" group.
type cluster struct {
	src          *source
	writeTimeout time.Duration
	nodes        []*node.Node
	groups       []*node.Group[Item]
	obs          []*observer
}

// startCluster starts cfg.Nodes nodes, the first as seed and the others
// joining it, with one random gossip key, and waits until every node trusts
// its cache and sees the whole cluster. On error nothing is left running.
func startCluster(ctx context.Context, cfg Config, src *source) (_ *cluster, err error) {
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("demo: gossip key: %w", err)
	}
	c := &cluster{src: src, writeTimeout: cfg.WriteTimeout}
	defer func() {
		if err != nil {
			c.close()
		}
	}()
	for i := range cfg.Nodes {
		name := fmt.Sprintf("n%d", i+1)
		nc := node.DefaultLocalConfig(name)
		nc.SecretKey = key
		nc.Logger = cfg.Logger.With("node", name)
		o := &observer{}
		nc.Observer = o
		if i > 0 {
			nc.Join = []string{c.nodes[0].Addr()}
		}
		n, err := node.Start(ctx, nc)
		if err != nil {
			return nil, fmt.Errorf("demo: start %s: %w", name, err)
		}
		c.nodes = append(c.nodes, n)
		c.obs = append(c.obs, o)
		g, err := node.NewGroup(n, groupName, node.GroupConfig[Item]{
			Loader: node.LoaderFunc[Item](src.loader(i)),
			TTL:    cfg.TTL, // the naive caches' TTL: freshness here comes from invalidations, not expiry
		})
		if err != nil {
			return nil, fmt.Errorf("demo: %s: %w", name, err)
		}
		c.groups = append(c.groups, g)
	}
	progress(cfg, "waiting until the %d nodes see each other and trust their caches (up to %v)", cfg.Nodes, cfg.ReadyTimeout)
	if err := c.waitReady(ctx, cfg.ReadyTimeout); err != nil {
		return nil, err
	}
	return c, nil
}

// waitReady polls until every node trusts its cache and sees all members
// alive, or timeout passes, or ctx ends.
func (c *cluster) waitReady(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		if c.ready() {
			return nil
		}
		select {
		case <-ctx.Done():
			if c.ready() {
				return nil
			}
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return fmt.Errorf("demo: cluster not ready after %v: %s", timeout, c.describe())
			}
			return fmt.Errorf("demo: waiting for the cluster: %w", context.Cause(ctx))
		case <-t.C:
		}
	}
}

// aliveMembers counts the members n sees alive, itself included.
func aliveMembers(n *node.Node) int {
	alive := 0
	for _, m := range n.Members() {
		if m.State == "alive" {
			alive++
		}
	}
	return alive
}

func (c *cluster) ready() bool {
	for _, n := range c.nodes {
		if !n.Trusted() || aliveMembers(n) != len(c.nodes) {
			return false
		}
	}
	return true
}

// describe says, per node, what it lacks.
func (c *cluster) describe() string {
	parts := make([]string, len(c.nodes))
	for i, n := range c.nodes {
		trust := "trusted"
		if !n.Trusted() {
			trust = "not trusted"
		}
		parts[i] = fmt.Sprintf("%s %s, sees %d/%d alive", n.Name(), trust, aliveMembers(n), len(c.nodes))
	}
	return strings.Join(parts, "; ")
}

// close closes every node, concurrently: each Close leaves the cluster and
// waits for its loads, which takes up to a second or so.
func (c *cluster) close() error {
	errs := make([]error, len(c.nodes))
	var wg sync.WaitGroup
	for i, n := range c.nodes {
		wg.Go(func() { errs[i] = n.Close(context.Background()) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

func (c *cluster) size() int { return len(c.nodes) }

func (c *cluster) read(ctx context.Context, i int, key string) (Item, error) {
	return c.groups[i].Get(ctx, key)
}

// write commits to the source, then invalidates with the committed version
// and waits for every live member to acknowledge it (AckAll).
func (c *cluster) write(ctx context.Context, i int, key string) (uint64, error) {
	v, err := c.src.write(ctx, key)
	if err != nil {
		return 0, err
	}
	ictx, cancel := context.WithTimeout(ctx, c.writeTimeout)
	defer cancel()
	if err := c.groups[i].Invalidate(ictx, key, v, node.AckAll()); err != nil {
		return 0, fmt.Errorf("demo: invalidate %s v%d: %w", key, v, err)
	}
	return v, nil
}

func (c *cluster) live(i int) liveRow {
	s := c.nodes[i].Stats()
	r := liveRow{name: s.Name, invalidations: true, trusted: s.Trusted, loads: c.obs[i].loads.Load()}
	for _, g := range s.Groups {
		if g.Name != groupName {
			continue
		}
		r.hits = g.Hits
		r.lookups = g.Hits + g.Misses + g.Degraded
		r.received = g.InvalidationsReceived
		r.applied = g.InvalidationsApplied
	}
	r.propP50 = c.obs[i].propagation.Quantile(0.50)
	r.propP99 = c.obs[i].propagation.Quantile(0.99)
	return r
}
