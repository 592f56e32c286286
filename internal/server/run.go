package server

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
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

	HTTPAddr string // "" = "127.0.0.1:8080"
	Source   string // DSN, required: sqlite:///path/to/db or postgres://...
	// Feed reads the table's changes from PostgreSQL's commit log (package
	// pgfeed, logical replication: wal_level=logical, a role with
	// REPLICATION): a write by anyone (psql, a migration, another service)
	// invalidates every node, and the group is LogFed (G9). Every node runs
	// a candidate; the replication slot "nearcache_<table>" admits one.
	// Needs a postgres:// Source.
	Feed  bool
	Table string        // "" = "items"
	TTL   time.Duration // of cached items; 0 = no expiry (invalidations only)

	AckTimeout      time.Duration // 0 = 2s; see Config.AckTimeout
	ShutdownTimeout time.Duration // 0 = 10s: how long in-flight requests get on shutdown

	// Secure by default: Run refuses (with an error wrapping ErrInsecure) a
	// node whose gossip, fill or HTTP listener binds beyond loopback without
	// Node.SecretKey, or whose HTTP listener does without Tokens, unless
	// Insecure is set; then it logs a WARN naming what is exposed.
	Insecure bool
	Tokens   []string // API tokens, see Config.Tokens and LoadTokens
	// TokenFile, instead of Tokens, is a token file (LoadTokens) that Run
	// reads at start and again on every value from Reload (the binary's
	// SIGHUP): a file that fails to load then keeps the tokens in force.
	TokenFile string
	Reload    <-chan os.Signal
	// KeyFile is the key file the node's Keyring was read from
	// (LoadKeyring); on every value from Reload it is read again and the
	// node's keyring replaced (a rotation: add a key everywhere, then make it
	// first everywhere, then remove the old one). "" = no reload.
	KeyFile           string
	ReadTokenRequired bool // see Config.ReadTokenRequired
	// TLSCert and TLSKey are PEM files: set both to serve HTTPS. TLSCA, if
	// set, is the PEM bundle that verifies the other members' certificates
	// when the status page asks them (default: the system roots).
	TLSCert, TLSKey, TLSCA string

	// HTTP bounds. ReadTimeout bounds reading a request, headers and body
	// (0 = 15s; headers alone get at most 5s); WriteTimeout bounds the rest,
	// handler and response (0 = ReadTimeout + AckTimeout + 30s, so an AckAll
	// write is never cut); IdleTimeout closes idle keep-alive connections
	// (0 = 60s); MaxHeaderBytes bounds the request headers (0 = 16 KiB);
	// MaxConns caps the open connections (0 = 1024): at the cap a new one
	// closes the longest-idle connection, or is closed itself when every
	// connection has a request in progress. Bodies are at most 1 MiB.
	ReadTimeout, WriteTimeout, IdleTimeout time.Duration
	MaxHeaderBytes, MaxConns               int

	Logger *slog.Logger // nil = discard
}

// ErrInsecure is wrapped by Run's error when it refuses a node listening
// beyond loopback without a key or without API tokens.
var ErrInsecure = errors.New("listening beyond loopback unprotected")

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
	if c.ReadTimeout == 0 {
		c.ReadTimeout = 15 * time.Second
	}
	if c.WriteTimeout == 0 {
		ack := c.AckTimeout
		if ack == 0 {
			ack = 2 * time.Second
		}
		c.WriteTimeout = c.ReadTimeout + ack + 30*time.Second
	}
	if c.IdleTimeout == 0 {
		c.IdleTimeout = 60 * time.Second
	}
	if c.MaxHeaderBytes == 0 {
		c.MaxHeaderBytes = 16 << 10
	}
	if c.MaxConns == 0 {
		c.MaxConns = 1024
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
	case c.JoinTimeout < 0, c.TTL < 0, c.AckTimeout < 0, c.ShutdownTimeout < 0,
		c.ReadTimeout < 0, c.WriteTimeout < 0, c.IdleTimeout < 0:
		return errors.New("server: durations must not be negative")
	case c.MaxHeaderBytes < 0, c.MaxConns < 0:
		return errors.New("server: MaxHeaderBytes and MaxConns must not be negative")
	case (c.TLSCert == "") != (c.TLSKey == ""):
		return errors.New("server: TLSCert and TLSKey go together")
	case len(c.Tokens) > 0 && c.TokenFile != "":
		return errors.New("server: Tokens and TokenFile are exclusive")
	case c.ReadTokenRequired && len(c.Tokens) == 0 && c.TokenFile == "":
		return errors.New("server: ReadTokenRequired needs Tokens (--api-token-file)")
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
	if cfg.TokenFile != "" {
		toks, err := LoadTokens(cfg.TokenFile)
		if err != nil {
			return fmt.Errorf("server: %w", err)
		}
		cfg.Tokens = toks
	}
	warnings, err := cfg.security()
	if err != nil {
		return fmt.Errorf("server: %w", err)
	}
	for _, w := range warnings {
		log.Warn("insecure: "+w, "insecure", true)
	}
	var serverTLS, peerTLS *tls.Config
	if cfg.TLSCert != "" {
		if serverTLS, peerTLS, err = loadTLS(cfg.TLSCert, cfg.TLSKey, cfg.TLSCA); err != nil {
			return err
		}
	}

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
	lim := newConnLimiter(ln, cfg.MaxConns)
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
	items, err := node.NewGroup(n, GroupName, node.GroupConfig[Item]{Loader: src, TTL: cfg.TTL, Cost: itemCost, LogFed: cfg.Feed})
	if err != nil {
		return err
	}
	if cfg.Feed {
		stop, err := startFeed(ctx, cfg, n, log)
		if err != nil {
			return err
		}
		defer stop()
	}
	s, err := New(Config{
		Node:              n,
		Groups:            []Group{{Cache: items, Source: src}},
		Gatherer:          reg,
		Observer:          obs,
		AckTimeout:        cfg.AckTimeout,
		RequirePeer:       len(cfg.Node.Join) > 0,
		Tokens:            cfg.Tokens,
		ReadTokenRequired: cfg.ReadTokenRequired,
		PeerTLS:           peerTLS,
		Logger:            log,
	})
	if err != nil {
		return err
	}
	reg.MustRegister(httpCollectors(lim, s)...)
	rctx, rcancel := context.WithCancel(ctx)
	reloaded := make(chan struct{})
	defer func() { rcancel(); <-reloaded }()
	go func() {
		defer close(reloaded)
		reloadSecrets(rctx, cfg, s, n)
	}()
	hs := &http.Server{
		Handler:           s,
		ReadHeaderTimeout: min(5*time.Second, cfg.ReadTimeout),
		ReadTimeout:       cfg.ReadTimeout,
		WriteTimeout:      cfg.WriteTimeout,
		IdleTimeout:       cfg.IdleTimeout,
		MaxHeaderBytes:    cfg.MaxHeaderBytes,
		ConnState:         lim.connState,
		TLSConfig:         serverTLS,
		ErrorLog:          newErrorLog(log.With("component", "http")),
	}
	served := make(chan error, 1)
	scheme := "http"
	if serverTLS != nil {
		scheme = "https"
		go func() { served <- hs.ServeTLS(lim, "", "") }()
	} else {
		go func() { served <- hs.Serve(lim) }()
	}
	log.Info("serving", "http", scheme+"://"+ln.Addr().String(), "gossip", n.Addr(), "source", redact(cfg.Source),
		"api_tokens", len(cfg.Tokens), "read_token_required", cfg.ReadTokenRequired)

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

// reloadSecrets re-reads cfg.TokenFile into s and cfg.KeyFile into n's
// keyring on every cfg.Reload until ctx ends. A file that fails to load
// leaves what is in force.
func reloadSecrets(ctx context.Context, cfg RunConfig, s *Server, n *node.Node) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-cfg.Reload: // nil: never
		}
		if cfg.KeyFile != "" {
			keys, err := LoadKeyring(cfg.KeyFile)
			if err == nil {
				err = n.SetKeyring(keys)
			}
			if err != nil {
				cfg.Logger.Warn("keyring not reloaded; the previous keys stay in force", "err", err)
			} else {
				cfg.Logger.Info("keyring reloaded", "keys", len(keys))
			}
		}
		if cfg.TokenFile == "" {
			continue
		}
		toks, err := LoadTokens(cfg.TokenFile)
		if err == nil {
			err = s.SetTokens(toks)
		}
		if err != nil {
			cfg.Logger.Warn("API tokens not reloaded; the previous ones stay in force", "err", err)
			continue
		}
		cfg.Logger.Info("API tokens reloaded", "tokens", len(toks))
	}
}

// loadTLS loads the server's certificate, and the client configuration that
// asks the other members (verified by the roots in caFile, or the system's).
func loadTLS(certFile, keyFile, caFile string) (server, peer *tls.Config, err error) {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, nil, fmt.Errorf("server: TLS certificate: %w", err)
	}
	peer = &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, nil, fmt.Errorf("server: TLS CA: %w", err)
		}
		peer.RootCAs = x509.NewCertPool()
		if !peer.RootCAs.AppendCertsFromPEM(pem) {
			return nil, nil, fmt.Errorf("server: TLS CA %s holds no PEM certificate", caFile)
		}
	}
	return &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}, peer, nil
}

// httpCollectors export the HTTP listener's and the API's defences.
func httpCollectors(lim *connLimiter, s *Server) []prometheus.Collector {
	return []prometheus.Collector{
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: "nearcache", Name: "http_connections",
			Help: "HTTP connections open.",
		}, func() float64 { return float64(lim.open()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Namespace: "nearcache", Name: "http_connections_evicted_total",
			Help: "Idle HTTP connections closed to make room for a new one at the connection cap.",
		}, func() float64 { return float64(lim.evicted.Load()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Namespace: "nearcache", Name: "http_connections_refused_total",
			Help: "New HTTP connections closed at the connection cap: every open one had a request in progress.",
		}, func() float64 { return float64(lim.refused.Load()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Namespace: "nearcache", Name: "http_auth_failures_total",
			Help: "HTTP requests refused with 401: no API token, or a wrong one.",
		}, func() float64 { return float64(s.AuthFailures()) }),
	}
}
