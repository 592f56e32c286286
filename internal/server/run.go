package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"time"

	"github.com/nearcache/nearcache/metrics"
	"github.com/nearcache/nearcache/node"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// GroupName is the one group `nearcache node` serves, over the source table.
const GroupName = "items"

// RunConfig configures [Run]: one `nearcache node` process. Zero fields take
// the default in their comment.
type RunConfig struct {
	// Node configures the node; Run sets its Observer (Prometheus metrics)
	// and, when nil, its Logger and Meta (EncodeMeta of the HTTP port).
	Node node.Config
	// JoinTimeout bounds how long startup waits for a seed to answer before
	// serving anyway (the node keeps trying in the background). 0 = 10s.
	JoinTimeout time.Duration

	HTTPAddr string        // "" = "127.0.0.1:8080"
	Source   string        // DSN, required: sqlite:///path/to/db or postgres://...
	Table    string        // "" = "items"
	TTL      time.Duration // of cached items; 0 = no expiry (invalidations only)

	AckTimeout      time.Duration // 0 = 2s; see Config.AckTimeout
	ShutdownTimeout time.Duration // 0 = 10s: how long in-flight requests get on shutdown

	Logger *slog.Logger // nil = discard
}

func (c RunConfig) withDefaults() RunConfig {
	if c.JoinTimeout == 0 {
		c.JoinTimeout = 10 * time.Second
	}
	if c.HTTPAddr == "" {
		c.HTTPAddr = "127.0.0.1:8080"
	}
	if c.Table == "" {
		c.Table = "items"
	}
	if c.ShutdownTimeout == 0 {
		c.ShutdownTimeout = 10 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Node.Logger == nil {
		c.Node.Logger = c.Logger
	}
	return c
}

func (c RunConfig) validate() error {
	switch {
	case c.Source == "":
		return errors.New("server: Source is required (sqlite:///path/to/db or postgres://...)")
	case c.JoinTimeout < 0, c.TTL < 0, c.AckTimeout < 0, c.ShutdownTimeout < 0:
		return errors.New("server: durations must not be negative")
	}
	return nil
}

// Run serves one node until ctx ends: it opens the source, starts the node
// with Prometheus metrics, creates the "items" group and serves the HTTP API
// on HTTPAddr. When ctx ends it stops accepting requests, lets those in flight
// finish (at most ShutdownTimeout), leaves the cluster, closes the node and
// the source, and returns nil. Startup errors are returned at once.
func Run(ctx context.Context, cfg RunConfig) error {
	if err := cfg.validate(); err != nil {
		return err
	}
	cfg = cfg.withDefaults()
	log := cfg.Logger

	src, err := OpenSource(ctx, cfg.Source, cfg.Table)
	if err != nil {
		return err
	}
	defer src.Close()

	// Listen first: the node advertises the HTTP port to its peers.
	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("server: listen: %w", err)
	}
	defer ln.Close() // a no-op once Serve has it
	if cfg.Node.Meta == nil {
		cfg.Node.Meta = EncodeMeta(ln.Addr().(*net.TCPAddr).Port)
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m := metrics.New(reg)
	obs := NewObserver(m)
	cfg.Node.Observer = obs

	joinCtx, cancel := context.WithTimeout(ctx, cfg.JoinTimeout)
	n, err := node.Start(joinCtx, cfg.Node)
	cancel()
	if err != nil {
		return err
	}
	defer func() {
		// Shutdown is bounded: a Kubernetes grace period is 30 s by default.
		cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := n.Close(cctx); err != nil {
			log.Warn("close node", "err", err)
		}
	}()
	if err := m.Err(); err != nil {
		log.Warn("metrics not exported", "err", err)
	}
	items, err := node.NewGroup(n, GroupName, node.GroupConfig[Item]{Loader: src, TTL: cfg.TTL, Cost: itemCost})
	if err != nil {
		return err
	}
	s, err := New(Config{
		Node:        n,
		Groups:      []Group{{Cache: items, Source: src}},
		Gatherer:    reg,
		Observer:    obs,
		AckTimeout:  cfg.AckTimeout,
		RequirePeer: len(cfg.Node.Join) > 0,
		Logger:      log,
	})
	if err != nil {
		return err
	}
	hs := &http.Server{
		Handler:           s,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	served := make(chan error, 1)
	go func() { served <- hs.Serve(ln) }()
	log.Info("serving", "http", ln.Addr().String(), "gossip", n.Addr(), "source", redact(cfg.Source))

	select {
	case err := <-served: // Serve failed on its own
		return fmt.Errorf("server: serve: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down: draining HTTP, then leaving the cluster")
	sctx, scancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer scancel()
	if err := hs.Shutdown(sctx); err != nil {
		log.Warn("HTTP shutdown", "err", err)
		hs.Close()
	}
	<-served
	return nil // deferred: n.Close (leaves), src.Close
}

// redact hides a DSN's password for logs.
func redact(dsn string) string {
	if u, err := url.Parse(dsn); err == nil && u.User != nil {
		if _, has := u.User.Password(); has {
			return u.Redacted()
		}
	}
	return dsn
}
