package attack

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nearcache/nearcache/gossip"
	"github.com/nearcache/nearcache/loader"
	"github.com/nearcache/nearcache/node"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// memberlist.Shutdown does not wait for its probe goroutines.
		goleak.IgnoreAnyFunction("github.com/hashicorp/memberlist.(*Memberlist).probeNode"),
		goleak.IgnoreAnyFunction("time.Sleep"),
	)
}

// source is a versioned in-memory table; loads counts loader calls.
type source struct {
	mu    sync.Mutex
	rows  map[string]row
	loads int
}

type row struct {
	v   string
	ver uint64
}

func newSource() *source { return &source{rows: map[string]row{}} }

func (s *source) put(k, v string, ver uint64) {
	s.mu.Lock()
	s.rows[k] = row{v, ver}
	s.mu.Unlock()
}

func (s *source) load(_ context.Context, k string) (string, uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.loads++
	r, ok := s.rows[k]
	if !ok {
		return "", 0, loader.ErrNotFound
	}
	return r.v, r.ver, nil
}

// logBuf collects a node's log lines.
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

type member struct {
	n      *node.Node
	g      *node.Group[string]
	fill   string // the fill listener's address
	logs   *logBuf
	gossip string // host:port
}

type opts struct {
	keys  [][]byte
	join  []string
	mod   func(*node.Config)
	src   *source
	group string
}

func startMember(t *testing.T, name string, o opts) *member {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	logs := &logBuf{}
	cfg := node.Config{
		Name:             name,
		Cluster:          "attack",
		BindAddr:         "127.0.0.1",
		Join:             o.join,
		Keyring:          o.keys,
		Profile:          gossip.Local,
		PushPullInterval: 300 * time.Millisecond,
		FillListener:     ln,
		Logger:           slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelWarn})),
	}
	if o.mod != nil {
		o.mod(&cfg)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	n, err := node.Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close(context.Background()) })
	m := &member{n: n, fill: ln.Addr().String(), logs: logs, gossip: n.Addr()}
	if o.src != nil {
		g, err := node.NewGroup(n, cmpOr(o.group, "items"), node.GroupConfig[string]{Loader: loader.Func[string](o.src.load)})
		if err != nil {
			t.Fatal(err)
		}
		m.g = g
	}
	return m
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// startCluster starts n members joined to the first, all with the same
// options, and waits until each sees all and trusts its cache.
func startCluster(t *testing.T, n int, o opts) []*member {
	t.Helper()
	ms := []*member{startMember(t, "n0", o)}
	for i := 1; i < n; i++ {
		oi := o
		oi.join = []string{ms[0].gossip}
		ms = append(ms, startMember(t, "n"+strconv.Itoa(i), oi))
	}
	waitFor(t, 15*time.Second, "every member sees all and is ready", func() bool {
		for _, m := range ms {
			if len(m.n.Members()) != n || !m.n.Trusted() {
				return false
			}
		}
		return true
	})
	return ms
}

// waitFor polls cond: the tests watch real sockets and clocks, not a
// simulation, so there is nothing to synchronise on but the outcome.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for: %s", d, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// rssBytes is this process's resident set size.
func rssBytes(t *testing.T) int64 {
	t.Helper()
	f, err := os.Open("/proc/self/status")
	if err != nil {
		t.Skip("no /proc/self/status:", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatal("no VmRSS")
	return 0
}

// peakRSS samples RSS until stop is closed and returns the highest seen.
func peakRSS(t *testing.T, stop <-chan struct{}) <-chan int64 {
	out := make(chan int64, 1)
	go func() {
		peak := rssBytes(t)
		tk := time.NewTicker(5 * time.Millisecond)
		defer tk.Stop()
		for {
			select {
			case <-stop:
				out <- max(peak, rssBytes(t))
				return
			case <-tk.C:
				peak = max(peak, rssBytes(t))
			}
		}
	}()
	return out
}

func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

// settle lets goroutines of finished connections exit before counting them.
func goroutines() int {
	runtime.GC()
	return runtime.NumGoroutine()
}

func key32(b byte) []byte { return bytes.Repeat([]byte{b}, 32) }

func runtimeGC() { runtime.GC(); runtime.GC() }
