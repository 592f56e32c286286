package gossip

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/nearcache/nearcache/gossip/gossiptest"
)

// sizeRecorder wraps a real transport and records the size of every UDP
// packet written.
type sizeRecorder struct {
	memberlist.NodeAwareTransport
	mu    sync.Mutex
	sizes map[int]bool
	max   int
}

func (s *sizeRecorder) WriteToAddress(b []byte, a memberlist.Address) (time.Time, error) {
	s.mu.Lock()
	s.sizes[len(b)] = true
	s.max = max(s.max, len(b))
	s.mu.Unlock()
	return s.NodeAwareTransport.WriteToAddress(b, a)
}

func (s *sizeRecorder) WriteTo(b []byte, addr string) (time.Time, error) {
	return s.WriteToAddress(b, memberlist.Address{Addr: addr})
}

// TestMaxBatchEncrypted sends a batch of exactly packetBudget bytes over a
// real encrypted 2-node loopback cluster: it arrives, and the UDP packet
// carrying it (user-msg byte, CRC header, AES-GCM overhead) is within
// memberlist's 1400-byte UDPBufferSize. Catches: a budget that forgets an
// overhead.
func TestMaxBatchEncrypted(t *testing.T) {
	key := []byte("0123456789abcdef")
	var rec *sizeRecorder
	cluster := strings.Repeat("c", MaxClusterLen) // the longest label
	nodes := startCluster(t, 2, func(i int, cfg *Config) {
		cfg.SecretKey = key
		cfg.Cluster = cluster
		if i == 0 {
			nt, err := memberlist.NewNetTransport(&memberlist.NetTransportConfig{BindAddrs: []string{"127.0.0.1"}})
			if err != nil {
				t.Fatal(err)
			}
			rec = &sizeRecorder{NodeAwareTransport: nt, sizes: map[int]bool{}}
			cfg.Transport = rec
		}
	})
	// Grow one key until the batch is exactly packetBudget bytes.
	es := keys("k", 8)
	for i := range es {
		es[i].Origin, es[i].Seq, es[i].SentAt = "zz", uint64(i+1), time.Now().UnixNano()
	}
	rnd := rand.New(rand.NewPCG(1, 1))
	var b []encodedBatch
	for i := 0; ; i++ {
		b = encodeBatches("zz", 1, 0, es)
		if len(b[0].data) >= packetBudget {
			break
		}
		es[i%len(es)].Key += string(rune('a' + rnd.IntN(26))) // incompressible
	}
	if len(b) != 1 || len(b[0].data) != packetBudget || b[0].oversize {
		t.Fatalf("could not build a %d-byte batch: %d batches, first %d bytes", packetBudget, len(b), len(b[0].data))
	}
	var peer memberlist.Node
	nodes[0].c.mu.Lock()
	peer = nodes[0].c.peers["n01"].node
	nodes[0].c.mu.Unlock()
	if err := nodes[0].c.ml.SendBestEffort(&peer, b[0].data); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "max-size batch", func() bool { return nodes[1].rec.distinct() == 8 })
	rec.mu.Lock()
	defer rec.mu.Unlock()
	want := 2 + MaxClusterLen + 1 + 5 + 29 + packetBudget // label + userMsg + CRC + AES-GCM
	if !rec.sizes[want] || want > 1400 {
		t.Fatalf("no %d-byte packet seen (or over 1400); max packet %d", want, rec.max)
	}
	t.Logf("max-size batch %d bytes -> UDP packet %d bytes (limit 1400); largest packet seen %d", packetBudget, want, rec.max)
}

// TestOversizeInvalidationOverTCP: a lone invalidation too big for a packet
// (255-byte group, 1024-byte key) still reaches every peer, over TCP.
func TestOversizeInvalidationOverTCP(t *testing.T) {
	nodes := startCluster(t, 2, nil)
	big := Invalidation{Group: strings.Repeat("g", MaxGroupLen), Kind: KindKey, Key: strings.Repeat("k", MaxKeyLen), Version: 1}
	if err := nodes[0].c.Publish(context.Background(), []Invalidation{big}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "oversize invalidation", func() bool { return nodes[1].rec.distinct() == 1 })
}

// TestOtherClusterIgnored: a node of another cluster (another Cluster name,
// or the default one) that dials a member, or is dialled by one, stays out:
// neither side adopts the other. This is what keeps a cluster that gossips
// to a dead member's address from merging with whatever binds it next.
func TestOtherClusterIgnored(t *testing.T) {
	nodes := startCluster(t, 2, nil)
	for _, tc := range []struct{ name, cluster string }{
		{"other name", testCluster()},
		{"default name", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultLocalConfig()
			cfg.Name = "stranger"
			cfg.Cluster = tc.cluster
			cfg.BindAddr = "127.0.0.1"
			cfg.Handler = newRecorder()
			cfg.Join = []string{nodes[0].c.LocalAddr()}
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			c, err := Start(ctx, cfg)
			if err != nil {
				t.Fatal(err) // ctx ending is not an error
			}
			defer c.Close()
			jctx, jcancel := context.WithTimeout(context.Background(), time.Second)
			defer jcancel()
			if n, err := nodes[1].c.Join(jctx, []string{c.LocalAddr()}); n != 0 {
				t.Errorf("a member joined the stranger: %d answered (err %v)", n, err)
			}
			if h := c.Health(); h.AlivePeers != 0 || len(c.Members()) != 1 {
				t.Fatalf("stranger joined: %+v, members %v", h, c.Members())
			}
			for _, n := range nodes {
				if got := len(n.c.Members()); got != 2 {
					t.Fatalf("%s sees %d members, want 2", n.c.LocalName(), got)
				}
			}
		})
	}
}

// TestEncryptionRefusesStrangers: a peer without the key, or with another
// key, cannot join an encrypted cluster.
func TestEncryptionRefusesStrangers(t *testing.T) {
	key := []byte("0123456789abcdef0123456789abcdef")
	nodes := startCluster(t, 2, func(i int, cfg *Config) { cfg.SecretKey = key })
	for _, tc := range []struct {
		name string
		key  []byte
	}{
		{"no key", nil},
		{"other key", []byte("fedcba9876543210fedcba9876543210")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultLocalConfig()
			cfg.Name = "stranger"
			cfg.Cluster = nodes[0].c.cfg.Cluster // refused for the key, not the name
			cfg.BindAddr = "127.0.0.1"
			cfg.Handler = newRecorder()
			cfg.SecretKey = tc.key
			cfg.Join = []string{nodes[0].c.LocalAddr()}
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			c, err := Start(ctx, cfg)
			if err != nil {
				t.Fatal(err) // ctx ending is not an error
			}
			defer c.Close()
			if h := c.Health(); h.AlivePeers != 0 {
				t.Fatalf("stranger joined: %+v", h)
			}
			for _, n := range nodes {
				if got := len(n.c.Members()); got != 2 {
					t.Fatalf("%s sees %d members, want 2", n.c.LocalName(), got)
				}
			}
		})
	}
}

func TestConfigValidation(t *testing.T) {
	h := HandlerFuncs{}
	cases := []struct {
		name string
		mod  func(*Config)
		want string
	}{
		{"no name", func(c *Config) { c.Name = "" }, "Name is required"},
		{"long name", func(c *Config) { c.Name = strings.Repeat("n", MaxNameLen+1) }, "Name must be"},
		{"long cluster", func(c *Config) { c.Cluster = strings.Repeat("c", MaxClusterLen+1) }, "Cluster must be"},
		{"no handler", func(c *Config) { c.Handler = nil }, "Handler is required"},
		{"bad key", func(c *Config) { c.SecretKey = []byte("short") }, "SecretKey"},
		{"big meta", func(c *Config) { c.Meta = make([]byte, 513) }, "Meta"},
		{"negative interval", func(c *Config) { c.HeartbeatInterval = -1 }, "negative"},
		{"bad port", func(c *Config) { c.BindPort = 70000 }, "BindPort"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultLocalConfig()
			cfg.Name, cfg.Handler, cfg.BindAddr = "a", h, "127.0.0.1"
			tc.mod(&cfg)
			_, err := Start(context.Background(), cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "gossip: ") {
				t.Fatalf("Start = %v, want an error about %q", err, tc.want)
			}
		})
	}
	t.Run("bind error", func(t *testing.T) {
		cfg := DefaultLocalConfig()
		cfg.Name, cfg.Handler, cfg.BindAddr = "a", h, "203.0.113.1" // not ours
		if c, err := Start(context.Background(), cfg); err == nil {
			c.Close()
			t.Fatal("Start on a foreign address succeeded")
		}
	})
	t.Run("publish validation", func(t *testing.T) {
		nodes := startCluster(t, 1, nil)
		for _, bad := range []Invalidation{
			{Group: "g", Kind: 0, Key: "k"},
			{Group: strings.Repeat("g", MaxGroupLen+1), Kind: KindKey},
			{Group: "g", Kind: KindKey, Key: strings.Repeat("k", MaxKeyLen+1)},
		} {
			if err := nodes[0].c.Publish(context.Background(), []Invalidation{bad}); err == nil {
				t.Errorf("Publish(%.40v) succeeded", bad)
			}
		}
	})
	_ = fmt.Sprint
}

// TestDropConvergesLoopback is TestDropConverges on real sockets (each
// NetTransport wrapped by gossiptest), to report a wall-clock convergence
// time under 20% packet loss.
func TestDropConvergesLoopback(t *testing.T) {
	if testing.Short() {
		t.Skip("real-time cluster test")
	}
	nw := gossiptest.New(21)
	nodes := startCluster(t, 5, func(i int, cfg *Config) {
		nt, err := memberlist.NewNetTransport(&memberlist.NetTransportConfig{BindAddrs: []string{"127.0.0.1"}})
		if err != nil {
			t.Fatal(err)
		}
		cfg.Transport = nw.Wrap(fmt.Sprintf("127.0.0.1:%d", nt.GetAutoBindPort()), nt)
	})
	nw.SetDrop(0.2)
	ctx := context.Background()
	start := time.Now()
	for r := range 20 {
		if err := nodes[r%2].c.Publish(ctx, keys(fmt.Sprintf("r%d-", r), 10)); err != nil {
			t.Fatal(err)
		}
	}
	published := time.Now()
	defer func() {
		if t.Failed() {
			for i, tn := range nodes {
				tn.c.mu.Lock()
				var gaps []string
				for k, s := range tn.c.streams {
					if s.missing() > 0 {
						gaps = append(gaps, fmt.Sprintf("%s/%d high=%d known=%d above=%d inflight=%v attempts=%d tries=%d rot=%d", k.origin, k.inc, s.high, s.known, len(s.above), s.inflight, s.attempts, s.tries, s.rot))
					}
				}
				tn.c.mu.Unlock()
				t.Logf("node %d: has %d; health %+v; stats %+v; gaps %v", i, tn.rec.distinct(), tn.c.Health(), tn.c.Stats(), gaps)
			}
		}
	}()
	waitFor(t, 10*time.Second, "every node has all 200", func() bool {
		for i, tn := range nodes {
			want := 100
			if i >= 2 {
				want = 200
			}
			if tn.rec.distinct() != want {
				return false
			}
		}
		return true
	})
	var gaps uint64
	for i, tn := range nodes {
		gaps += tn.c.Stats().GapsDetected
		if tn.rec.maxDeliveries() != 1 || len(tn.rec.lostOrigins()) != 0 {
			t.Errorf("node %d: duplicate delivery or unrepairable", i)
		}
	}
	t.Logf("loopback, 20%% drop, 5 nodes, 200 invalidations: converged %v after the last publish (%v after the first); %d gaps detected; network %+v",
		time.Since(published), time.Since(start), gaps, nw.Stats())
}
