package bench

import (
	"context"
	"errors"
	"fmt"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/redis/rueidis"
)

// redisTTL is the TTL of a Redis entry when the workload has none: Redis
// cache-aside users always set one.
func redisTTL(ttl time.Duration) time.Duration {
	if ttl <= 0 {
		return time.Hour
	}
	return ttl
}

// redisCache is a central Redis cache-aside with delete-on-write, one
// go-redis client (with its connection pool) per instance.
type redisCache struct {
	src     *Source
	addr    string
	ttl     time.Duration
	clients []*goredis.Client
}

func newRedis(ctx context.Context, env Env) (*redisCache, error) {
	if env.RedisAddr == "" {
		return nil, errors.New("bench: redis: no redis-server was started")
	}
	s := &redisCache{src: env.Source, ttl: redisTTL(env.TTL), addr: env.RedisAddr}
	for range env.Instances {
		c, err := s.dial(ctx)
		if err != nil {
			s.Close()
			return nil, err
		}
		s.clients = append(s.clients, c)
	}
	return s, nil
}

func (s *redisCache) dial(ctx context.Context) (*goredis.Client, error) {
	c := goredis.NewClient(&goredis.Options{Addr: s.addr, PoolSize: 32})
	if err := c.Ping(ctx).Err(); err != nil {
		c.Close()
		return nil, fmt.Errorf("bench: redis: %w", err)
	}
	return c, nil
}

func (s *redisCache) restart(ctx context.Context, i int) error {
	_ = s.clients[i].Close()
	c, err := s.dial(ctx)
	if err != nil {
		return err
	}
	s.clients[i] = c
	return nil
}

func (s *redisCache) Get(ctx context.Context, i int, key string) (Value, error) {
	c := s.clients[i]
	b, err := c.Get(ctx, key).Bytes()
	if err == nil {
		return decodeValue(b)
	}
	if !errors.Is(err, goredis.Nil) {
		return Value{}, fmt.Errorf("bench: redis GET: %w", err)
	}
	v, err := s.src.Read(ctx, key)
	if err != nil {
		return Value{}, err
	}
	if err := c.Set(ctx, key, encodeValue(v), s.ttl).Err(); err != nil {
		return Value{}, fmt.Errorf("bench: redis SET: %w", err)
	}
	return v, nil
}

func (s *redisCache) Write(ctx context.Context, i int, key string) (uint64, error) {
	ver, err := s.src.Write(ctx, key)
	if err != nil {
		return 0, err
	}
	if err := s.clients[i].Del(ctx, key).Err(); err != nil {
		return 0, fmt.Errorf("bench: redis DEL: %w", err)
	}
	return ver, nil
}

func (s *redisCache) Close() error {
	var errs []error
	for _, c := range s.clients {
		errs = append(errs, c.Close())
	}
	return errors.Join(errs...)
}

// redisCSC is Redis with server-assisted client-side caching (RESP3 CLIENT
// TRACKING) through rueidis: one client per instance, each with its own
// client-side cache that Redis invalidates by push messages.
type redisCSC struct {
	src     *Source
	addr    string
	ttl     time.Duration
	clients []rueidis.Client
}

func newRedisCSC(ctx context.Context, env Env) (*redisCSC, error) {
	if env.RedisAddr == "" {
		return nil, errors.New("bench: redis-csc: no redis-server was started")
	}
	s := &redisCSC{src: env.Source, ttl: redisTTL(env.TTL), addr: env.RedisAddr}
	for range env.Instances {
		c, err := s.dial()
		if err != nil {
			s.Close()
			return nil, err
		}
		s.clients = append(s.clients, c)
	}
	return s, nil
}

func (s *redisCSC) dial() (rueidis.Client, error) {
	c, err := rueidis.NewClient(rueidis.ClientOption{
		InitAddress:       []string{s.addr},
		CacheSizeEachConn: 64 << 20,
	})
	if err != nil {
		return nil, fmt.Errorf("bench: redis-csc: %w", err)
	}
	return c, nil
}

func (s *redisCSC) restart(_ context.Context, i int) error {
	s.clients[i].Close()
	c, err := s.dial()
	if err != nil {
		return err
	}
	s.clients[i] = c
	return nil
}

func (s *redisCSC) Get(ctx context.Context, i int, key string) (Value, error) {
	c := s.clients[i]
	b, err := c.DoCache(ctx, c.B().Get().Key(key).Cache(), s.ttl).AsBytes()
	if err == nil {
		return decodeValue(b)
	}
	if !rueidis.IsRedisNil(err) {
		return Value{}, fmt.Errorf("bench: redis-csc GET: %w", err)
	}
	v, err := s.src.Read(ctx, key)
	if err != nil {
		return Value{}, err
	}
	set := c.B().Set().Key(key).Value(rueidis.BinaryString(encodeValue(v))).Px(s.ttl).Build()
	if err := c.Do(ctx, set).Error(); err != nil {
		return Value{}, fmt.Errorf("bench: redis-csc SET: %w", err)
	}
	return v, nil
}

func (s *redisCSC) Write(ctx context.Context, i int, key string) (uint64, error) {
	ver, err := s.src.Write(ctx, key)
	if err != nil {
		return 0, err
	}
	c := s.clients[i]
	if err := c.Do(ctx, c.B().Del().Key(key).Build()).Error(); err != nil {
		return 0, fmt.Errorf("bench: redis-csc DEL: %w", err)
	}
	return ver, nil
}

func (s *redisCSC) Close() error {
	for _, c := range s.clients {
		c.Close()
	}
	return nil
}
