package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/nearcache/nearcache/gossip"
	"github.com/nearcache/nearcache/internal/server"
	"github.com/nearcache/nearcache/node"
)

// envPrefix prefixes the environment variable of every node flag:
// --http-addr is NEARCACHE_HTTP_ADDR.
const envPrefix = "NEARCACHE_"

// envName is the environment variable for flag name.
func envName(name string) string {
	return envPrefix + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

// applyEnv sets every flag not given on the command line from its
// environment variable, if set: a flag wins over the environment, the
// environment over the default.
func applyEnv(fs *flag.FlagSet, getenv func(string) (string, bool)) error {
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	var errs []error
	fs.VisitAll(func(f *flag.Flag) {
		if given[f.Name] {
			return
		}
		if v, ok := getenv(envName(f.Name)); ok {
			if err := fs.Set(f.Name, v); err != nil {
				errs = append(errs, fmt.Errorf("%s=%q: %w", envName(f.Name), v, err))
			}
		}
	})
	return errors.Join(errs...)
}

// splitList splits a comma-separated list, dropping blanks.
func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// withPort appends port to seeds given without one.
func withPort(seeds []string, port int) []string {
	out := make([]string, len(seeds))
	for i, s := range seeds {
		out[i] = s
		if _, _, err := net.SplitHostPort(s); err != nil { // no port (or a bare IPv6 address)
			out[i] = net.JoinHostPort(strings.Trim(s, "[]"), strconv.Itoa(port))
		}
	}
	return out
}

func parseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return 0, fmt.Errorf("--log-level %q is not one of debug, info, warn, error", s)
	}
	return l, nil
}

// nodeCommand defines `nearcache node`'s flags and returns the function that runs it.
func nodeCommand(stdout, stderr io.Writer) (*flag.FlagSet, func(context.Context) int) {
	return nodeCommandEnv(stdout, stderr, os.LookupEnv)
}

func nodeCommandEnv(_, stderr io.Writer, getenv func(string) (string, bool)) (*flag.FlagSet, func(context.Context) int) {
	fs := flag.NewFlagSet("node", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: nearcache node [flags]\n\n"+
			"Runs one production nearcache node: it joins the cluster, caches the rows of\n"+
			"one SQL table as group %q, and serves the HTTP API, /metrics, /healthz,\n"+
			"/readyz and the /debug/cluster status page. SIGTERM drains HTTP, leaves the\n"+
			"cluster and exits 0.\n\n"+
			"Secure by default: every listener binds 127.0.0.1 unless told otherwise, and a\n"+
			"node listening beyond loopback refuses to start without --secret-key-file (and,\n"+
			"for HTTP, --api-token-file) unless --insecure. See docs/deploy.md.\n\n"+
			"Every flag can also be set by an environment variable, NEARCACHE_ and the\n"+
			"flag's name in capitals with _ for - (--http-addr: NEARCACHE_HTTP_ADDR);\n"+
			"a flag on the command line wins over the environment.\n\nflags:\n", server.GroupName)
		fs.PrintDefaults()
	}
	host, _ := os.Hostname()
	def := server.RunConfig{}
	name := fs.String("name", host, "node name, unique in the cluster (default: the host name)")
	cluster := fs.String("cluster", "nearcache", "cluster name, the same on every node; nodes of another cluster are ignored (at most 32 bytes)")
	bindAddr := fs.String("bind-addr", "127.0.0.1", "gossip (and fill) bind address; beyond loopback (0.0.0.0 in a container) it needs --secret-key-file")
	gossipPort := fs.Int("gossip-port", 7946, "gossip port (TCP and UDP)")
	advAddr := fs.String("advertise-addr", "", "address advertised to peers (default: chosen from the bind address)")
	advPort := fs.Int("advertise-port", 0, "port advertised to peers (0 = the gossip port)")
	fillPort := fs.Int("fill-port", 0, "owner-fill port (TCP) on the bind address; 0 = any free port, advertised in gossip (fix it for network policies)")
	httpAddr := fs.String("http-addr", "127.0.0.1:8080", "HTTP API address; beyond loopback (0.0.0.0:8080 in a container) it needs --api-token-file")
	join := fs.String("join", "", "comma-separated seeds host[:port]; a DNS name stands for every address it resolves to, re-resolved on each rejoin (default port: --gossip-port)")
	keyFile := fs.String("secret-key-file", "", "`FILE` with the keyring: one key a line (64 hex characters, or base64 of 16, 24 or 32 bytes; '#' comments), the first is used to send; re-read on SIGHUP (default: no encryption)")
	tokenFile := fs.String("api-token-file", "", "`FILE` of API tokens, one a line (# comments), re-read on SIGHUP: PUT, invalidations and /debug/* need \"Authorization: Bearer <token>\"")
	readToken := fs.Bool("read-token-required", false, "reads (GET of a key) need a token too")
	insecure := fs.Bool("insecure", false, "start even when a listener binds beyond loopback without --secret-key-file or --api-token-file (a WARN names what is exposed); only on a network you trust")
	tlsCert := fs.String("tls-cert", "", "`FILE`: PEM certificate (chain) to serve HTTPS; with --tls-key")
	tlsKey := fs.String("tls-key", "", "`FILE`: PEM private key of --tls-cert")
	tlsCA := fs.String("tls-ca", "", "`FILE`: PEM roots verifying the other members' certificates for the status page (default: the system's)")
	readTimeout := fs.Duration("http-read-timeout", 15*time.Second, "how long a client may take to send a request, headers and body")
	maxConns := fs.Int("http-max-conns", 1024, "cap on open HTTP connections; at the cap a new one closes the longest-idle one")
	source := fs.String("source", "", "source of truth DSN, required: sqlite:///path/to/db or postgres://user:pass@host/db")
	table := fs.String("table", "items", "table with columns id TEXT PRIMARY KEY, body TEXT, version INTEGER (created in SQLite when missing)")
	maxStale := fs.Duration("max-staleness", 5*time.Second, "a node that has not heard the cluster this long stops serving cached values")
	ttl := fs.Duration("ttl", def.TTL, "TTL of cached items (0 = none: invalidations only)")
	feed := fs.Bool("feed", false, "read the table's changes from PostgreSQL's commit log (logical replication; needs a postgres:// --source, wal_level=logical, a role with REPLICATION, and ALTER TABLE <table> REPLICA IDENTITY FULL): writes by anyone invalidate every node, and reads are served from cache only while the feed is fresh (G9)")
	ackTimeout := fs.Duration("ack-timeout", 2*time.Second, "how long a PUT waits for every member to acknowledge its invalidation")
	shutdown := fs.Duration("shutdown-timeout", 10*time.Second, "how long in-flight requests get on SIGTERM")
	joinTimeout := fs.Duration("join-timeout", 10*time.Second, "how long startup waits for a seed before serving anyway")
	profile := fs.String("profile", "lan", "gossip timing: lan, or local (tight timeouts, for clusters on one machine)")
	logLevel := fs.String("log-level", "info", "log level: debug, info, warn, error")

	return fs, func(ctx context.Context) int {
		fail := func(format string, args ...any) int {
			fmt.Fprintf(stderr, "nearcache node: "+format+"\n", args...)
			return exitUsage
		}
		if err := applyEnv(fs, getenv); err != nil {
			return fail("%v", err)
		}
		level, err := parseLevel(*logLevel)
		if err != nil {
			return fail("%v", err)
		}
		var prof gossip.Profile
		switch *profile {
		case "lan":
			prof = gossip.LAN
		case "local":
			prof = gossip.Local
		default:
			return fail("--profile %q is not one of lan, local", *profile)
		}
		switch {
		case *name == "":
			return fail("--name is required")
		case *source == "":
			return fail("--source is required (sqlite:///path/to/db or postgres://...)")
		case *gossipPort < 0 || *gossipPort > 65535, *advPort < 0 || *advPort > 65535, *fillPort < 0 || *fillPort > 65535:
			return fail("ports must be between 0 and 65535")
		case *fillPort != 0 && *fillPort == *gossipPort:
			return fail("--fill-port must differ from --gossip-port")
		case (*tlsCert == "") != (*tlsKey == ""):
			return fail("--tls-cert and --tls-key go together")
		case *readToken && *tokenFile == "":
			return fail("--read-token-required needs --api-token-file")
		case *maxConns < 1:
			return fail("--http-max-conns must be at least 1")
		case *readTimeout <= 0:
			return fail("--http-read-timeout must be positive")
		}
		var keys [][]byte
		if *keyFile != "" {
			if keys, err = server.LoadKeyring(*keyFile); err != nil {
				return fail("%v", err)
			}
		}
		if *tokenFile != "" {
			if _, err := server.LoadTokens(*tokenFile); err != nil {
				return fail("%v", err)
			}
		}
		// SIGHUP re-reads the token file and the key file (rotations without a restart).
		hup := make(chan os.Signal, 1)
		signal.Notify(hup, syscall.SIGHUP)
		defer signal.Stop(hup)
		log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level})).With("node", *name)
		ncfg := node.DefaultConfig(*name)
		ncfg.Cluster = *cluster
		ncfg.BindAddr = *bindAddr
		ncfg.BindPort = *gossipPort
		ncfg.AdvertiseAddr = *advAddr
		ncfg.AdvertisePort = *advPort
		if *fillPort != 0 {
			ncfg.FillAddr = net.JoinHostPort(*bindAddr, strconv.Itoa(*fillPort))
		}
		ncfg.Join = withPort(splitList(*join), *gossipPort)
		ncfg.Keyring = keys
		ncfg.MaxStaleness = *maxStale
		ncfg.Profile = prof
		ncfg.Logger = log
		err = server.Run(ctx, server.RunConfig{
			Node:              ncfg,
			JoinTimeout:       *joinTimeout,
			HTTPAddr:          *httpAddr,
			Source:            *source,
			Feed:              *feed,
			Table:             *table,
			TTL:               *ttl,
			AckTimeout:        *ackTimeout,
			ShutdownTimeout:   *shutdown,
			Insecure:          *insecure,
			TokenFile:         *tokenFile,
			KeyFile:           *keyFile,
			Reload:            hup,
			ReadTokenRequired: *readToken,
			TLSCert:           *tlsCert,
			TLSKey:            *tlsKey,
			TLSCA:             *tlsCA,
			ReadTimeout:       *readTimeout,
			MaxConns:          *maxConns,
			Logger:            log,
		})
		if errors.Is(err, server.ErrInsecure) {
			fmt.Fprintf(stderr, "nearcache node: %v\n", err)
			return exitUsage
		}
		if err != nil {
			fmt.Fprintf(stderr, "nearcache node: %v\n", err)
			return exitFailure
		}
		log.Info("stopped")
		return exitOK
	}
}
