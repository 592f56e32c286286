// Command gcpeer is one golang/groupcache HTTPPool peer, run as a child
// process by package groupcachepeer: groupcache allows one HTTPPool per
// process, so the baseline's peers must be separate processes.
//
// It serves group "bench", whose getter returns a value of --value-size
// bytes, on --self, with --peers as the pool. It prints "ready" on stdout
// once listening and exits on SIGTERM, SIGINT or EOF on stdin (so it dies
// with its parent). GET /stats answers the getter call count and the group's
// counters as JSON.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/golang/groupcache"
)

// Group is the name of the groupcache group gcpeer serves.
const Group = "bench"

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "gcpeer:", err)
		os.Exit(1)
	}
}

func run() error {
	self := flag.String("self", "", "this peer's base URL, e.g. http://127.0.0.1:8001 (required)")
	peers := flag.String("peers", "", "comma-separated base URLs of all peers, self included (required)")
	valueSize := flag.Int("value-size", 128, "bytes of the value the getter returns")
	cacheBytes := flag.Int64("cache-bytes", 64<<20, "groupcache cacheBytes of the group")
	listenFD := flag.Int("listen-fd", 0, "inherited listening socket to serve on (0 = listen on --self's host:port)")
	sourceURL := flag.String("source-url", "", "GET this URL with ?key=KEY in the getter and store the body (\"\" = a fixed value of --value-size bytes)")
	ignoreTerm := flag.Bool("ignore-term", false, "ignore SIGTERM (tests of the parent's SIGKILL fallback)")
	flag.Parse()
	if *self == "" || *peers == "" {
		return errors.New("--self and --peers are required")
	}
	if *valueSize < 0 {
		return errors.New("--value-size must not be negative")
	}
	u, err := url.Parse(*self)
	if err != nil {
		return fmt.Errorf("--self: %w", err)
	}

	value := make([]byte, *valueSize)
	for i := range value {
		value[i] = byte('a' + i%26)
	}
	var getterCalls atomic.Int64
	group := groupcache.NewGroup(Group, *cacheBytes, groupcache.GetterFunc(
		func(ctx context.Context, key string, dest groupcache.Sink) error {
			getterCalls.Add(1)
			if *sourceURL != "" {
				return fetchSource(ctx, *sourceURL, key, dest)
			}
			return dest.SetBytes(value)
		}))

	// NewHTTPPoolOpts, not NewHTTPPool: serve on our own mux, not DefaultServeMux.
	pool := groupcache.NewHTTPPoolOpts(*self, nil)
	pool.Set(strings.Split(*peers, ",")...)

	mux := http.NewServeMux()
	mux.Handle("/_groupcache/", pool)
	mux.HandleFunc("/stats", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		main := group.CacheStats(groupcache.MainCache)
		hot := group.CacheStats(groupcache.HotCache)
		_ = json.NewEncoder(w).Encode(map[string]int64{
			"getter_calls":    getterCalls.Load(),
			"gets":            group.Stats.Gets.Get(),
			"cache_hits":      group.Stats.CacheHits.Get(),
			"peer_loads":      group.Stats.PeerLoads.Get(),
			"peer_errors":     group.Stats.PeerErrors.Get(),
			"local_loads":     group.Stats.LocalLoads.Get(),
			"server_requests": group.Stats.ServerRequests.Get(),
			"main_items":      main.Items,
			"hot_items":       hot.Items,
		})
	})

	var ln net.Listener
	if *listenFD > 0 {
		f := os.NewFile(uintptr(*listenFD), "listener")
		ln, err = net.FileListener(f)
		_ = f.Close() // FileListener dups the descriptor
	} else {
		ln, err = net.Listen("tcp", u.Host)
	}
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	sigs := []os.Signal{syscall.SIGTERM, os.Interrupt}
	if *ignoreTerm {
		signal.Ignore(syscall.SIGTERM)
		sigs = []os.Signal{os.Interrupt}
	}
	ctx, stop := signal.NotifyContext(context.Background(), sigs...)
	defer stop()
	stdinEOF := make(chan struct{})
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		close(stdinEOF)
	}()

	fmt.Println("ready")

	select {
	case <-ctx.Done():
	case <-stdinEOF:
		if *ignoreTerm {
			<-ctx.Done() // only SIGKILL (or SIGINT) ends a peer that ignores SIGTERM
		}
	case err := <-served:
		return fmt.Errorf("serve: %w", err)
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		// Shutdown waits up to 5 s for a connection that was opened but
		// never sent a request (an HTTP client's spare); no request is in
		// flight on it, so closing it is a clean exit.
		if errors.Is(err, context.DeadlineExceeded) {
			return srv.Close()
		}
		return err
	}
	return nil
}

// fetchSource is the getter with --source-url: the value is the body of
// GET {sourceURL}?key={key}.
func fetchSource(ctx context.Context, sourceURL, key string, dest groupcache.Sink) error {
	if ctx == nil { // groupcache passes the caller's context, which may be nil
		ctx = context.Background()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, sourceURL+"?key="+url.QueryEscape(key), nil)
	if err != nil {
		return err
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("source: %w", err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		return fmt.Errorf("source: %w", err)
	}
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("source: %s: %s", res.Status, b)
	}
	return dest.SetBytes(b)
}
