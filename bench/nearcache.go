package bench

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/nearcache/nearcache/node"
)

// nearcacheGroup is the group every node of the strategy serves.
const nearcacheGroup = "items"

// nearcacheStrategy is N nodes in this process on 127.0.0.1, gossiping
// (encrypted) over real UDP/TCP sockets; a writer invalidates through its
// own node after the write committed.
type nearcacheStrategy struct {
	src    *Source
	ackAll bool
	key    []byte // gossip key
	env    Env
	nodes  []*node.Node
	groups []*node.Group[Value]
}

// start starts node i on port (0 = any) joining join, with its group.
func (s *nearcacheStrategy) start(ctx context.Context, i, port int, join []string) (*node.Node, *node.Group[Value], error) {
	name := fmt.Sprintf("bench-%d", i)
	nc := node.DefaultLocalConfig(name)
	nc.SecretKey = s.key
	nc.BindPort = port
	nc.Join = join
	nc.Logger = s.env.Logger.With("node", name)
	n, err := node.Start(ctx, nc)
	if err != nil {
		return nil, nil, fmt.Errorf("bench: nearcache: %w", err)
	}
	src := s.env.Source
	g, err := node.NewGroup(n, nearcacheGroup, node.GroupConfig[Value]{
		Loader: node.LoaderFunc[Value](func(ctx context.Context, key string) (Value, uint64, error) {
			v, err := src.Read(ctx, key)
			return v, v.Version, err
		}),
		TTL:  s.env.TTL,
		Cost: func(key string, v Value) int64 { return int64(len(key) + len(v.Body) + 64) },
	})
	if err != nil {
		n.Close(context.Background())
		return nil, nil, fmt.Errorf("bench: nearcache: %w", err)
	}
	return n, g, nil
}

// restart closes node i and starts it again under the same name and port,
// then waits until the cluster is whole and trusted again.
func (s *nearcacheStrategy) restart(ctx context.Context, i int) error {
	_, portStr, err := net.SplitHostPort(s.nodes[i].Addr())
	if err != nil {
		return fmt.Errorf("bench: nearcache: %w", err)
	}
	port, _ := strconv.Atoi(portStr)
	if err := s.nodes[i].Close(context.Background()); err != nil {
		return fmt.Errorf("bench: nearcache: close: %w", err)
	}
	var join []string
	for j, n := range s.nodes {
		if j != i {
			join = append(join, n.Addr())
		}
	}
	n, g, err := s.start(ctx, i, port, join)
	if err != nil {
		return err
	}
	s.nodes[i], s.groups[i] = n, g
	return s.waitReady(ctx, 15*time.Second)
}

func newNearcache(ctx context.Context, env Env) (_ *nearcacheStrategy, err error) {
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("bench: nearcache: %w", err)
	}
	s := &nearcacheStrategy{src: env.Source, ackAll: env.AckAll}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	s.key, s.env = key, env
	for i := range env.Instances {
		var join []string
		if i > 0 {
			join = []string{s.nodes[0].Addr()}
		}
		n, g, err := s.start(ctx, i, 0, join)
		if err != nil {
			return nil, err
		}
		s.nodes = append(s.nodes, n)
		s.groups = append(s.groups, g)
	}
	if err := s.waitReady(ctx, 15*time.Second); err != nil {
		return nil, err
	}
	return s, nil
}

// waitReady waits until every node sees every other alive and trusts its cache.
func (s *nearcacheStrategy) waitReady(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		ready := true
		for _, n := range s.nodes {
			alive := 0
			for _, m := range n.Members() {
				if m.State == "alive" {
					alive++
				}
			}
			ready = ready && n.Trusted() && alive == len(s.nodes)
		}
		if ready {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("bench: nearcache: cluster of %d not ready: %w", len(s.nodes), ctx.Err())
		case <-t.C:
		}
	}
}

func (s *nearcacheStrategy) Get(ctx context.Context, i int, key string) (Value, error) {
	return s.groups[i].Get(ctx, key)
}

func (s *nearcacheStrategy) Write(ctx context.Context, i int, key string) (uint64, error) {
	ver, err := s.src.Write(ctx, key)
	if err != nil {
		return 0, err
	}
	if s.ackAll {
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		err = s.groups[i].Invalidate(ctx, key, ver, node.AckAll())
	} else {
		err = s.groups[i].Invalidate(ctx, key, ver)
	}
	if err != nil {
		return ver, fmt.Errorf("bench: nearcache invalidate: %w", err)
	}
	return ver, nil
}

// loads returns the loader calls of every node (for the smoke test).
func (s *nearcacheStrategy) loads() uint64 {
	var n uint64
	for _, nd := range s.nodes {
		for _, g := range nd.Stats().Groups {
			n += g.Loads
		}
	}
	return n
}

func (s *nearcacheStrategy) Close() error {
	var errs []error
	for _, n := range s.nodes {
		errs = append(errs, n.Close(context.Background()))
	}
	return errors.Join(errs...)
}
