package bench

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/nearcache/nearcache/bench/groupcachepeer"
)

// groupcacheStrategy is golang/groupcache: one gcpeer child process per
// instance (groupcache allows one HTTPPool per process), whose getters read
// the Source over HTTP from this process. An instance's read is a peer fetch
// from its own gcpeer, which serves it from its caches or fills it from the
// key's owner. groupcache has no TTL and no delete: a write cannot reach the
// caches, and a cached value is served until evicted.
type groupcacheStrategy struct {
	src     *Source
	srv     *http.Server
	served  chan struct{}
	cluster *groupcachepeer.Cluster
	urls    []string
	tr      *http.Transport // the fetcher's, so Close can drop its idle connections
	fetch   *groupcachepeer.Fetcher
}

func newGroupcache(ctx context.Context, env Env) (_ *groupcacheStrategy, err error) {
	if env.GroupcacheBinary == "" {
		return nil, errors.New("bench: groupcache: gcpeer binary not built")
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 64 // closed-loop workers: keep their connections
	s := &groupcacheStrategy{src: env.Source, served: make(chan struct{}), tr: tr, fetch: groupcachepeer.NewFetcher(tr)}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("bench: groupcache: source listener: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /source", s.serveSource)
	s.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		defer close(s.served)
		_ = s.srv.Serve(ln)
	}()
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	s.cluster, err = groupcachepeer.Start(ctx, groupcachepeer.Config{
		Binary:    env.GroupcacheBinary,
		Peers:     env.Instances,
		SourceURL: "http://" + ln.Addr().String() + "/source",
	})
	if err != nil {
		return nil, fmt.Errorf("bench: groupcache: %w", err)
	}
	s.urls = s.cluster.URLs()
	return s, nil
}

// serveSource answers a gcpeer getter: the encoded row of ?key=.
func (s *groupcacheStrategy) serveSource(w http.ResponseWriter, r *http.Request) {
	v, err := s.src.Read(r.Context(), r.URL.Query().Get("key"))
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	_, _ = w.Write(encodeValue(v))
}

func (s *groupcacheStrategy) Get(ctx context.Context, i int, key string) (Value, error) {
	b, err := s.fetch.Value(ctx, s.urls[i], key)
	if err != nil {
		return Value{}, fmt.Errorf("bench: groupcache: %w", err)
	}
	return decodeValue(b)
}

// Write commits to the source only: groupcache cannot invalidate.
func (s *groupcacheStrategy) Write(ctx context.Context, _ int, key string) (uint64, error) {
	return s.src.Write(ctx, key)
}

func (s *groupcacheStrategy) Close() error {
	var errs []error
	s.tr.CloseIdleConnections() // before the peers stop: none waits on a spare connection
	if s.cluster != nil {
		errs = append(errs, s.cluster.Stop())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	errs = append(errs, s.srv.Shutdown(ctx))
	<-s.served
	s.tr.CloseIdleConnections()
	return errors.Join(errs...)
}
