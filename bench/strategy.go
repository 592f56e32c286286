package bench

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/dgraph-io/ristretto/v2"
)

// Strategy is N application instances reading through some cache to the
// [Source]. Get and Write are safe for concurrent use; instance is in
// [0, Env.Instances).
type Strategy interface {
	// Get returns key's value as instance sees it.
	Get(ctx context.Context, instance int, key string) (Value, error)
	// Write commits a new version of key to the source from instance, then
	// does whatever the strategy does to keep caches honest (delete, publish
	// an invalidation, nothing), and returns the committed version once that
	// returned.
	Write(ctx context.Context, instance int, key string) (uint64, error)
	// Close releases everything the strategy started.
	Close() error
}

// Env is what a strategy is built from: shared by every strategy of a run.
type Env struct {
	Source    *Source
	Instances int           // application instances
	TTL       time.Duration // cache TTL of the workload (0 = none, where the strategy allows)
	Logger    *slog.Logger  // never nil

	RedisAddr        string // host:port of the run's redis-server; "" = not started
	GroupcacheBinary string // gcpeer binary; "" = not built
	AckAll           bool   // nearcache: Invalidate with node.AckAll

	redis *redisServer // the server behind RedisAddr, for flushes and its memory figure
}

// restarter is a Strategy that can stop and restart one instance, which
// starts again with an empty cache. No Get or Write of that instance runs
// meanwhile.
type restarter interface {
	restart(ctx context.Context, instance int) error
}

// StrategyNames lists every strategy, in report order.
var StrategyNames = []string{"none", "local-ttl", "redis", "redis-csc", "groupcache", "nearcache"}

// newStrategy builds the strategy called name.
func newStrategy(ctx context.Context, name string, env Env) (Strategy, error) {
	switch name {
	case "none":
		return noCache{src: env.Source}, nil
	case "local-ttl":
		return newLocalTTL(env)
	case "redis":
		return newRedis(ctx, env)
	case "redis-csc":
		return newRedisCSC(ctx, env)
	case "groupcache":
		return newGroupcache(ctx, env)
	case "nearcache":
		return newNearcache(ctx, env)
	}
	return nil, fmt.Errorf("bench: unknown strategy %q", name)
}

// noCache sends every read to the source.
type noCache struct{ src *Source }

func (s noCache) Get(ctx context.Context, _ int, key string) (Value, error) {
	return s.src.Read(ctx, key)
}

func (s noCache) Write(ctx context.Context, _ int, key string) (uint64, error) {
	return s.src.Write(ctx, key)
}

func (noCache) Close() error { return nil }

func (noCache) restart(context.Context, int) error { return nil }

// localTTL is a ristretto cache-aside per instance with a TTL and no
// cross-instance invalidation: a writer deletes its own copy only. What most
// teams start with.
type localTTL struct {
	src    *Source
	ttl    time.Duration
	caches []*ristretto.Cache[string, Value]
}

func newLocalTTL(env Env) (*localTTL, error) {
	s := &localTTL{src: env.Source, ttl: env.TTL}
	for range env.Instances {
		c, err := newRistretto()
		if err != nil {
			s.Close()
			return nil, err
		}
		s.caches = append(s.caches, c)
	}
	return s, nil
}

func newRistretto() (*ristretto.Cache[string, Value], error) {
	c, err := ristretto.NewCache(&ristretto.Config[string, Value]{
		NumCounters: 1 << 20,
		MaxCost:     64 << 20,
		BufferItems: 64,
	})
	if err != nil {
		return nil, fmt.Errorf("bench: local-ttl: %w", err)
	}
	return c, nil
}

func (s *localTTL) restart(_ context.Context, i int) error {
	s.caches[i].Close()
	c, err := newRistretto()
	if err != nil {
		return err
	}
	s.caches[i] = c
	return nil
}

func (s *localTTL) Get(ctx context.Context, i int, key string) (Value, error) {
	if v, ok := s.caches[i].Get(key); ok {
		return v, nil
	}
	v, err := s.src.Read(ctx, key)
	if err != nil {
		return Value{}, err
	}
	s.caches[i].SetWithTTL(key, v, int64(len(key)+len(v.Body)+64), s.ttl)
	return v, nil
}

func (s *localTTL) Write(ctx context.Context, i int, key string) (uint64, error) {
	ver, err := s.src.Write(ctx, key)
	if err != nil {
		return 0, err
	}
	s.caches[i].Del(key)
	return ver, nil
}

func (s *localTTL) Close() error {
	for _, c := range s.caches {
		c.Close()
	}
	return nil
}
