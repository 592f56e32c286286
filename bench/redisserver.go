package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"syscall"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// ErrNoRedis is returned when redis-server is not on PATH.
var ErrNoRedis = errors.New("bench: redis-server not found on PATH; install it with `make bench-deps` (scripts/bench-deps.sh, apt-get) or skip the redis strategies")

// redisServer is a redis-server child process on a free 127.0.0.1 port, with
// no persistence.
type redisServer struct {
	addr string
	cmd  *exec.Cmd
	done chan struct{} // closed when Wait returned
	out  bytes.Buffer  // its stdout+stderr, for error messages
}

// startRedis starts redis-server and waits until it answers PING.
func startRedis(ctx context.Context) (*redisServer, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, ErrNoRedis
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("bench: redis: free port: %w", err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	_ = ln.Close() // redis-server cannot inherit a socket: a small race, retried by the caller's error
	s := &redisServer{addr: "127.0.0.1:" + strconv.Itoa(port), done: make(chan struct{})}
	s.cmd = exec.Command(bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--protected-mode", "yes")
	s.cmd.Stdout = &s.out
	s.cmd.Stderr = &s.out
	setParentDeathSignal(s.cmd)
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("bench: starting redis-server: %w", err)
	}
	go func() {
		_ = s.cmd.Wait()
		close(s.done)
	}()
	c := goredis.NewClient(&goredis.Options{Addr: s.addr, MaxRetries: -1})
	defer c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if err := c.Ping(ctx).Err(); err == nil {
			return s, nil
		}
		select {
		case <-s.done:
			return nil, fmt.Errorf("bench: redis-server exited at start: %s", s.out.String())
		case <-ctx.Done():
			s.stop()
			return nil, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.stop()
			return nil, errors.New("bench: redis-server did not answer PING within 10s")
		}
	}
}

// flush empties the server between runs.
func (s *redisServer) flush(ctx context.Context) error {
	c := goredis.NewClient(&goredis.Options{Addr: s.addr})
	defer c.Close()
	return c.FlushAll(ctx).Err()
}

// usedMemory returns the server's used_memory (bytes).
func (s *redisServer) usedMemory(ctx context.Context) int64 {
	c := goredis.NewClient(&goredis.Options{Addr: s.addr})
	defer c.Close()
	info, err := c.InfoMap(ctx, "memory").Result()
	if err != nil {
		return 0
	}
	n, _ := strconv.ParseInt(info["Memory"]["used_memory"], 10, 64)
	return n
}

// stop stops the server by pid: SIGTERM, then SIGKILL after 5s.
func (s *redisServer) stop() {
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(5 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
	}
}
