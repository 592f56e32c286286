package groupcachepeer

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/golang/groupcache/consistenthash"
)

// Group is the groupcache group every gcpeer serves.
const Group = "bench"

// Replicas is HTTPPool's default number of virtual nodes per peer (its
// unexported defaultReplicas); gcpeer uses the default, and [Cluster.Owner]
// must use the same.
const Replicas = 50

// Build compiles cmd/gcpeer into dir and returns the binary's path. It runs
// the go command found in GOROOT (or PATH) from this package's module.
func Build(ctx context.Context, dir string) (string, error) {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return "", errors.New("groupcachepeer: cannot locate package source")
	}
	pkgDir := filepath.Dir(file)
	bin := filepath.Join(dir, "gcpeer")
	goCmd := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(goCmd); err != nil {
		goCmd = "go"
	}
	cmd := exec.CommandContext(ctx, goCmd, "build", "-o", bin, "./cmd/gcpeer")
	cmd.Dir = pkgDir
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("groupcachepeer: building gcpeer: %w\n%s", err, out)
	}
	return bin, nil
}

// Config describes a cluster of gcpeer processes.
type Config struct {
	Binary      string        // path from Build; required
	Peers       int           // number of child processes; 0 = 2
	ValueSize   int           // bytes of every value the getter returns; 0 = 128
	StopTimeout time.Duration // SIGTERM to SIGKILL; 0 = 5s
	Stderr      io.Writer     // children's stderr; nil = kept (last 4 KiB) for error messages
	// SourceURL, when set, makes every getter GET SourceURL+"?key="+key and
	// store the response body instead of a fixed value of ValueSize bytes:
	// the harness's source of truth behind groupcache. "" = fixed values.
	SourceURL string

	// IgnoreTerm makes the children ignore SIGTERM, so Stop must SIGKILL
	// them. For tests of Stop.
	IgnoreTerm bool
}

func (c Config) validate() error {
	switch {
	case c.Binary == "":
		return errors.New("groupcachepeer: Binary is required")
	case c.Peers < 0:
		return errors.New("groupcachepeer: Peers must not be negative")
	case c.ValueSize < 0:
		return errors.New("groupcachepeer: ValueSize must not be negative")
	case c.StopTimeout < 0:
		return errors.New("groupcachepeer: StopTimeout must not be negative")
	}
	return nil
}

func (c Config) withDefaults() Config {
	if c.Peers == 0 {
		c.Peers = 2
	}
	if c.ValueSize == 0 {
		c.ValueSize = 128
	}
	if c.StopTimeout == 0 {
		c.StopTimeout = 5 * time.Second
	}
	return c
}

// Cluster is a running set of gcpeer child processes.
type Cluster struct {
	urls        []string
	ring        *consistenthash.Map
	stopTimeout time.Duration

	mu      sync.Mutex // guards procs and stopped
	procs   []*proc
	stopped bool
}

// proc is one child process.
type proc struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	done  chan struct{} // closed when Wait returned
	err   error         // Wait's result, set before done is closed
	ready chan struct{} // closed when the child printed "ready"
	log   *tailBuffer
}

// Start runs cfg.Peers gcpeer processes on 127.0.0.1 and returns once every
// one printed "ready". On failure it stops those already started.
func Start(ctx context.Context, cfg Config) (*Cluster, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()

	// Open every listener first: all URLs must be known before any peer starts.
	files := make([]*os.File, cfg.Peers)
	urls := make([]string, cfg.Peers)
	defer func() {
		for _, f := range files {
			if f != nil {
				_ = f.Close() // the children hold their own copies
			}
		}
	}()
	for i := range files {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("groupcachepeer: listen: %w", err)
		}
		f, err := ln.(*net.TCPListener).File()
		_ = ln.Close() // File returned a dup; the socket stays open through f
		if err != nil {
			return nil, fmt.Errorf("groupcachepeer: listener file: %w", err)
		}
		files[i] = f
		urls[i] = "http://" + ln.Addr().String()
	}

	ring := consistenthash.New(Replicas, crc32.ChecksumIEEE)
	ring.Add(urls...)
	c := &Cluster{urls: urls, ring: ring, stopTimeout: cfg.StopTimeout}
	for i := range urls {
		p, err := startProc(cfg, urls[i], urls, files[i])
		if err != nil {
			_ = c.Stop()
			return nil, err
		}
		c.mu.Lock()
		c.procs = append(c.procs, p)
		c.mu.Unlock()
	}
	for i, p := range c.procs {
		select {
		case <-p.ready:
		case <-p.done:
			_ = c.Stop()
			return nil, fmt.Errorf("groupcachepeer: peer %s exited before ready: %v: %s", urls[i], p.err, p.log)
		case <-ctx.Done():
			_ = c.Stop()
			return nil, fmt.Errorf("groupcachepeer: waiting for peer %s: %w", urls[i], ctx.Err())
		}
	}
	return c, nil
}

func startProc(cfg Config, self string, urls []string, listener *os.File) (*proc, error) {
	p := &proc{
		done:  make(chan struct{}),
		ready: make(chan struct{}),
		log:   &tailBuffer{max: 4096},
	}
	args := []string{
		"--self", self,
		"--peers", strings.Join(urls, ","),
		"--value-size", strconv.Itoa(cfg.ValueSize),
		"--listen-fd", "3", // ExtraFiles[0]
	}
	if cfg.IgnoreTerm {
		args = append(args, "--ignore-term")
	}
	if cfg.SourceURL != "" {
		args = append(args, "--source-url", cfg.SourceURL)
	}
	p.cmd = exec.Command(cfg.Binary, args...)
	p.cmd.ExtraFiles = []*os.File{listener}
	p.cmd.Stdout = &readyWriter{ready: p.ready}
	p.cmd.Stderr = p.log
	if cfg.Stderr != nil {
		p.cmd.Stderr = io.MultiWriter(cfg.Stderr, p.log)
	}
	setParentDeathSignal(p.cmd)
	stdin, err := p.cmd.StdinPipe()
	if err != nil {
		return nil, fmt.Errorf("groupcachepeer: stdin pipe: %w", err)
	}
	p.stdin = stdin
	if err := p.cmd.Start(); err != nil {
		_ = stdin.Close()
		return nil, fmt.Errorf("groupcachepeer: starting %s: %w", cfg.Binary, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// URLs returns the peers' base URLs, in the order of the pool each was given.
func (c *Cluster) URLs() []string { return append([]string(nil), c.urls...) }

// Pids returns the child process ids.
func (c *Cluster) Pids() []int {
	c.mu.Lock()
	defer c.mu.Unlock()
	pids := make([]int, len(c.procs))
	for i, p := range c.procs {
		pids[i] = p.cmd.Process.Pid
	}
	return pids
}

// Owner returns the base URL of the peer that owns key, computed as every
// HTTPPool of the cluster computes it (consistenthash, 50 replicas, crc32,
// peers added in URLs order).
func (c *Cluster) Owner(key string) string { return c.ring.Get(key) }

// KeyOwnedBy returns the first key "key-0", "key-1", ... owned by peer url.
func (c *Cluster) KeyOwnedBy(url string) (string, error) {
	for i := range 100000 {
		if k := "key-" + strconv.Itoa(i); c.Owner(k) == url {
			return k, nil
		}
	}
	return "", fmt.Errorf("groupcachepeer: no key owned by %s", url)
}

// Stats are a peer's counters, from its /stats endpoint.
type Stats struct {
	GetterCalls    int64 `json:"getter_calls"`    // calls of the group's getter (loads from the "source")
	Gets           int64 `json:"gets"`            // groupcache Stats.Gets
	CacheHits      int64 `json:"cache_hits"`      // Stats.CacheHits
	PeerLoads      int64 `json:"peer_loads"`      // Stats.PeerLoads
	PeerErrors     int64 `json:"peer_errors"`     // Stats.PeerErrors
	LocalLoads     int64 `json:"local_loads"`     // Stats.LocalLoads
	ServerRequests int64 `json:"server_requests"` // Stats.ServerRequests
	MainItems      int64 `json:"main_items"`      // items in mainCache
	HotItems       int64 `json:"hot_items"`       // items in hotCache
}

// Stats fetches the counters of the peer at base URL url.
func (c *Cluster) Stats(ctx context.Context, client *http.Client, url string) (Stats, error) {
	var s Stats
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url+"/stats", nil)
	if err != nil {
		return s, err
	}
	res, err := client.Do(req)
	if err != nil {
		return s, fmt.Errorf("groupcachepeer: stats: %w", err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return s, fmt.Errorf("groupcachepeer: stats: %s", res.Status)
	}
	if err := json.NewDecoder(res.Body).Decode(&s); err != nil {
		return s, fmt.Errorf("groupcachepeer: stats: %w", err)
	}
	return s, nil
}

// Stop stops every child: SIGTERM, then SIGKILL for any still running after
// StopTimeout, and waits for all of them. It is safe to call more than once;
// it returns an error if a child had to be killed or exited with an error.
func (c *Cluster) Stop() error {
	c.mu.Lock()
	if c.stopped {
		c.mu.Unlock()
		return nil
	}
	c.stopped = true
	procs := c.procs
	c.mu.Unlock()

	for _, p := range procs {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
	}
	var errs []error
	deadline := time.NewTimer(c.stopTimeout)
	defer deadline.Stop()
	expired := false
	for _, p := range procs {
		if !expired {
			select {
			case <-p.done:
			case <-deadline.C:
				expired = true
			}
		}
		select {
		case <-p.done:
		default:
			_ = p.cmd.Process.Kill()
			<-p.done
			errs = append(errs, fmt.Errorf("groupcachepeer: pid %d killed after %v", p.cmd.Process.Pid, c.stopTimeout))
		}
		if p.err != nil && !isKilled(p.err) {
			errs = append(errs, fmt.Errorf("groupcachepeer: pid %d: %w: %s", p.cmd.Process.Pid, p.err, p.log))
		}
		_ = p.stdin.Close()
	}
	return errors.Join(errs...)
}

// isKilled reports whether err is a child's exit by SIGKILL (Stop's own).
func isKilled(err error) bool {
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		return false
	}
	ws, ok := ee.Sys().(syscall.WaitStatus)
	return ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL
}

// readyWriter is a child's stdout: it closes ready at the first "ready"
// line and discards everything.
type readyWriter struct {
	ready chan struct{}
	line  []byte
	seen  bool
}

func (w *readyWriter) Write(b []byte) (int, error) {
	if w.seen {
		return len(b), nil
	}
	for _, ch := range b {
		if ch != '\n' {
			if len(w.line) < 64 {
				w.line = append(w.line, ch)
			}
			continue
		}
		if string(w.line) == "ready" {
			w.seen = true
			close(w.ready)
			return len(b), nil
		}
		w.line = w.line[:0]
	}
	return len(b), nil
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	max int

	mu  sync.Mutex // guards buf
	buf []byte
}

func (t *tailBuffer) Write(b []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, b...)
	if over := len(t.buf) - t.max; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
	return len(b), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(bytes.TrimSpace(t.buf))
}
