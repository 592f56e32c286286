package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/nearcache/nearcache/node"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Cache is what the server needs of a group; *node.Group[Item] is one.
type Cache interface {
	Name() string
	Get(ctx context.Context, key string, opts ...node.ReadOption) (Item, error)
	Invalidate(ctx context.Context, key string, version uint64, opts ...node.WriteOption) error
}

// Writer writes a key's new body to the source of truth and returns the
// committed version; *Source is one.
type Writer interface {
	Write(ctx context.Context, key, body string) (uint64, error)
}

// Group is one group served under /v1/groups/{name}.
type Group struct {
	Cache  Cache  // required
	Source Writer // nil = read-only: PUT answers 405
}

// Config configures a [Server]. Zero fields take the default in their comment.
type Config struct {
	Node   *node.Node // required, started; the server never closes it
	Groups []Group    // required: at least one, unique names

	Gatherer prometheus.Gatherer // nil = no /metrics (404)
	Observer *Observer           // nil = no propagation figures on the status page

	// AckTimeout bounds how long a PUT waits for every live member to
	// acknowledge its invalidation. 0 = 2s.
	AckTimeout time.Duration
	// RequirePeer makes /readyz wait until at least one peer is a member
	// (set it when the node was given a join list).
	RequirePeer bool

	// Tokens are the API tokens (see [LoadTokens]) that writes (PUT),
	// invalidations and /debug/* require, as "Authorization: Bearer
	// <token>" or as the password of Basic credentials; others get 401.
	// Empty = no authentication: only behind loopback or --insecure.
	// /healthz, /readyz and /metrics stay open for probes and scrapers.
	Tokens []string
	// ReadTokenRequired makes reads (GET of a key) require a token too.
	ReadTokenRequired bool
	// PeerTLS, when set, makes the status page ask the other members over
	// HTTPS with this client configuration (they serve TLS too). The
	// request carries Tokens[0]: every node reads the same token file.
	PeerTLS *tls.Config

	Logger *slog.Logger // nil = discard
}

// maxBody bounds any request body (only a PUT has one).
const maxBody = 1 << 20

func (c Config) validate() error {
	switch {
	case c.Node == nil:
		return errors.New("server: Node is required")
	case len(c.Groups) == 0:
		return errors.New("server: at least one Group is required")
	case c.AckTimeout < 0:
		return errors.New("server: AckTimeout must not be negative")
	case c.ReadTokenRequired && len(c.Tokens) == 0:
		return errors.New("server: ReadTokenRequired needs Tokens")
	}
	seen := map[string]bool{}
	for i, g := range c.Groups {
		if g.Cache == nil {
			return fmt.Errorf("server: Groups[%d].Cache is required", i)
		}
		if seen[g.Cache.Name()] {
			return fmt.Errorf("server: group %q given twice", g.Cache.Name())
		}
		seen[g.Cache.Name()] = true
	}
	return nil
}

// Server serves one node's HTTP API. It is an http.Handler.
type Server struct {
	cfg    Config
	groups map[string]Group // read-only after New
	mux    *http.ServeMux
	// peerClient asks other members for their status; no keep-alives, so
	// nothing lingers between polls of the status page.
	peerClient *http.Client
	peerScheme string // "http", or "https" with PeerTLS
	tokens     atomic.Pointer[tokenSet]
	// authFailures counts requests refused for a missing or wrong token.
	authFailures atomic.Uint64
}

// New returns a Server for cfg, which it copies.
func New(cfg Config) (*Server, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if cfg.AckTimeout == 0 {
		cfg.AckTimeout = 2 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{
		cfg:        cfg,
		groups:     make(map[string]Group, len(cfg.Groups)),
		mux:        http.NewServeMux(),
		peerClient: &http.Client{Timeout: peerTimeout, Transport: &http.Transport{DisableKeepAlives: true, TLSClientConfig: cfg.PeerTLS}},
		peerScheme: "http",
	}
	s.tokens.Store(newTokenSet(cfg.Tokens))
	if cfg.PeerTLS != nil {
		s.peerScheme = "https"
	}
	read := s.handleGet
	if cfg.ReadTokenRequired {
		read = s.protect(read)
	}
	for _, g := range cfg.Groups {
		s.groups[g.Cache.Name()] = g
	}
	s.cfg.Groups = nil // s.groups holds them

	const keyPath = "/v1/groups/{group}/keys/{key}"
	s.mux.HandleFunc("GET "+keyPath, read)
	s.mux.HandleFunc("PUT "+keyPath, s.protect(s.handlePut))
	s.mux.HandleFunc(keyPath, methodNotAllowed("GET, PUT"))
	s.mux.HandleFunc("POST "+keyPath+"/invalidate", s.protect(s.handleInvalidate))
	s.mux.HandleFunc(keyPath+"/invalidate", methodNotAllowed("POST"))
	if cfg.Gatherer != nil {
		s.mux.Handle("GET /metrics", promhttp.HandlerFor(cfg.Gatherer, promhttp.HandlerOpts{
			ErrorLog: slog.NewLogLogger(cfg.Logger.Handler(), slog.LevelWarn),
		}))
	}
	s.mux.HandleFunc("GET /healthz", s.handleHealthz)
	s.mux.HandleFunc("GET /readyz", s.handleReadyz)
	s.mux.HandleFunc("GET /debug/cluster", s.protect(s.handleStatusPage))
	s.mux.HandleFunc("GET /debug/cluster.js", s.protect(s.handleStatusJS))
	s.mux.HandleFunc("GET /debug/cluster.json", s.protect(s.handleStatusJSON))
	s.mux.HandleFunc("/debug/", s.protect(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no endpoint %s %s", r.Method, r.URL.Path))
	}))
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no endpoint %s %s", r.Method, r.URL.Path))
	})
	return s, nil
}

// ServeHTTP implements http.Handler.
// Every body is bounded by maxBody.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxBody)
	s.mux.ServeHTTP(w, r)
}

// AuthFailures returns how many requests were refused for a missing or
// wrong API token.
func (s *Server) AuthFailures() uint64 { return s.authFailures.Load() }

func methodNotAllowed(allow string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", allow)
		writeError(w, http.StatusMethodNotAllowed, fmt.Sprintf("method %s not allowed here (allowed: %s)", r.Method, allow))
	}
}

func (s *Server) handleHealthz(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// readiness is the /readyz answer.
type readiness struct {
	Ready   bool   `json:"ready"`
	Trusted bool   `json:"trusted"`
	Members int    `json:"members"`
	Reason  string `json:"reason,omitempty"`
}

// ready reports whether the node should receive traffic: it trusts its cache
// (caught up with the cluster, G5) and, when it was given seeds, has a peer.
func (s *Server) ready() readiness {
	st := s.cfg.Node.Stats()
	r := readiness{Trusted: st.Trusted, Members: st.Members}
	switch {
	case !st.Trusted:
		r.Reason = "cache not trusted: not caught up with the cluster, or cut off from it"
	case s.cfg.RequirePeer && st.Members < 2:
		r.Reason = "not joined: no peer is a member yet"
	default:
		r.Ready = true
	}
	return r
}

func (s *Server) handleReadyz(w http.ResponseWriter, _ *http.Request) {
	r := s.ready()
	code := http.StatusOK
	if !r.Ready {
		code = http.StatusServiceUnavailable
	}
	writeJSON(w, code, r)
}
