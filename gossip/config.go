package gossip

import (
	"errors"
	"fmt"
	"log"
	"log/slog"
	"strings"
	"time"

	"github.com/hashicorp/memberlist"
)

// Profile picks memberlist's base timing.
type Profile int

const (
	LAN   Profile = iota // memberlist.DefaultLANConfig
	Local                // memberlist.DefaultLocalConfig: tight timeouts, for tests on loopback
)

// Config configures a Cluster. Zero fields mean the default in their comment.
type Config struct {
	Name          string   // required; unique in the cluster; <= MaxNameLen bytes
	Cluster       string   // "" = "nearcache"; <= MaxClusterLen bytes; see below
	BindAddr      string   // "" = "0.0.0.0"
	BindPort      int      // 0 = any free port (see Cluster.LocalAddr)
	AdvertiseAddr string   // "" = memberlist's choice (the bind address, or a private IP when bound to 0.0.0.0)
	AdvertisePort int      // 0 = the bound port
	Join          []string // seeds "host:port"; DNS names re-resolved on every attempt; empty = start alone
	SecretKey     []byte   // nil = plaintext; 16, 24 or 32 bytes = AES-GCM gossip encryption, unencrypted peers refused
	// Keyring holds several keys (16, 24 or 32 bytes each): packets under
	// any of them are accepted, the first (the primary) encrypts what this
	// node sends. It is SecretKey for rotation (see Cluster.SetKeyring); set
	// one or the other. Empty = SecretKey.
	Keyring [][]byte
	Meta    []byte  // node metadata, <= 512 bytes (memberlist MetaMaxSize)
	Profile Profile // LAN (default) or Local

	GossipInterval        time.Duration // 0 = the profile's (200ms LAN, 100ms Local)
	PushPullInterval      time.Duration // 0 = 10s (LAN) / 2s (Local)
	ProbeInterval         time.Duration // 0 = the profile's (1s)
	HeartbeatInterval     time.Duration // 0 = 250ms: each node sends every alive peer its (incarnation, last seq)
	RejoinInterval        time.Duration // 0 = 2s: when a seed is not a member, Join the seeds again
	RecentLog             int           // invalidations kept for repair and anti-entropy (all origins); 0 = 16384
	FailedMemberRetention time.Duration // 0 = 10m: a failed (not left) member counts in Health.ExpectedPeers this long

	// Bounds on the TCP listener (see limit.go: memberlist buffers up to
	// 20 MiB of a stream before it checks the key). Streams over a cap are
	// closed unread; each counts in Stats.StreamsRefused.
	MaxStreams          int   // streams open at once; 0 = 64
	MaxStreamsPerSource int   // streams open at once from one source address; 0 = 8
	MaxStreamBytes      int64 // bytes one stream may deliver; 0 = 1 MiB

	Transport Transport    // nil = real UDP/TCP sockets
	Handler   Handler      // required
	Logger    *slog.Logger // nil = discard (memberlist's own log goes through it too)

	incarnation uint64 // tests: the starting incarnation, as if the wall clock read it; 0 = the wall clock
}

// Config.Cluster names the cluster. It becomes memberlist's Label: every packet and
// stream carries it and a node drops those carrying another one (or none), so
// two clusters on one network never merge, even when one is handed an address
// that used to belong to the other (a restarted pod, a reused port), and a
// stray memberlist (Consul, Serf) on the default port is not taken for a peer.
// Every node of a cluster must use the same name. With SecretKey set the name
// is also authenticated (GCM additional data). It travels in clear text.
//
// The default is a name, not no label, so that a nearcache node never merges
// with an unlabelled memberlist cluster. The label costs 2+len(Cluster) bytes
// of every UDP packet; packetBudget reserves room for the longest name.
const (
	MaxClusterLen  = 32                     // bytes in Config.Cluster
	MaxMetaLen     = memberlist.MetaMaxSize // bytes in Config.Meta
	DefaultCluster = "nearcache"            // Config.Cluster when empty
)

// DefaultConfig returns a Config for LAN clusters; set Name and Handler.
func DefaultConfig() Config { return Config{Profile: LAN} }

// DefaultLocalConfig returns a Config with tight timeouts for loopback tests.
func DefaultLocalConfig() Config { return Config{Profile: Local} }

// Fixed tunables of the reliability layer.
const (
	repairTick        = 20 * time.Millisecond  // repair loop period
	repairGrace       = 40 * time.Millisecond  // a gap younger than this may still be reordering
	repairTimeout     = 200 * time.Millisecond // ask the next peer after this
	maxRepairAttempts = 3                      // answers without the data before giving up
	ackResend         = 20 * time.Millisecond  // PublishAcked resend period
	maxQueued         = 4096                   // gossip retransmission queue bound
	stateBudget       = 32 << 10               // bytes of recent log in a push/pull state
	maxRepairSeqs     = 4096                   // seqs asked or answered in one repair exchange
)

// Validate reports the first thing wrong with c, as Start would. Callers
// that build a Config from their own (node.Config) check it here, so each
// limit is written once.
func (c Config) Validate() error { return c.validate() }

func (c *Config) validate() error {
	switch {
	case c.Name == "":
		return errors.New("gossip: Name is required")
	case len(c.Name) > MaxNameLen:
		return fmt.Errorf("gossip: Name must be at most %d bytes", MaxNameLen)
	case len(c.Cluster) > MaxClusterLen:
		return fmt.Errorf("gossip: Cluster must be at most %d bytes", MaxClusterLen)
	case c.Handler == nil:
		return errors.New("gossip: Handler is required")
	case c.BindPort < 0 || c.BindPort > 65535:
		return errors.New("gossip: BindPort must be between 0 and 65535")
	case c.AdvertisePort < 0 || c.AdvertisePort > 65535:
		return errors.New("gossip: AdvertisePort must be between 0 and 65535")
	case c.SecretKey != nil && len(c.SecretKey) != 16 && len(c.SecretKey) != 24 && len(c.SecretKey) != 32:
		return errors.New("gossip: SecretKey must be 16, 24 or 32 bytes")
	case c.SecretKey != nil && len(c.Keyring) > 0:
		return errors.New("gossip: set SecretKey or Keyring, not both")
	case ValidateKeyring(c.Keyring) != nil:
		return ValidateKeyring(c.Keyring)
	case len(c.Meta) > MaxMetaLen:
		return fmt.Errorf("gossip: Meta must be at most %d bytes", MaxMetaLen)
	case c.Profile != LAN && c.Profile != Local:
		return errors.New("gossip: Profile must be LAN or Local")
	case c.GossipInterval < 0 || c.PushPullInterval < 0 || c.ProbeInterval < 0 ||
		c.HeartbeatInterval < 0 || c.RejoinInterval < 0 || c.FailedMemberRetention < 0:
		return errors.New("gossip: intervals must not be negative")
	case c.RecentLog < 0:
		return errors.New("gossip: RecentLog must not be negative")
	case c.MaxStreams < 0 || c.MaxStreamsPerSource < 0 || c.MaxStreamBytes < 0:
		return errors.New("gossip: stream limits must not be negative")
	}
	return nil
}

// withDefaults returns a copy with defaults filled in.
func (c Config) withDefaults() Config {
	if c.BindAddr == "" {
		c.BindAddr = "0.0.0.0"
	}
	if c.Cluster == "" {
		c.Cluster = DefaultCluster
	}
	if c.PushPullInterval == 0 {
		c.PushPullInterval = 10 * time.Second
		if c.Profile == Local {
			c.PushPullInterval = 2 * time.Second
		}
	}
	if c.HeartbeatInterval == 0 {
		c.HeartbeatInterval = 250 * time.Millisecond
	}
	if c.RejoinInterval == 0 {
		c.RejoinInterval = 2 * time.Second
	}
	if c.RecentLog == 0 {
		c.RecentLog = 16384
	}
	if c.MaxStreams == 0 {
		c.MaxStreams = defaultMaxStreams
	}
	if c.MaxStreamsPerSource == 0 {
		c.MaxStreamsPerSource = defaultMaxStreamsPerSource
	}
	if c.MaxStreamBytes == 0 {
		c.MaxStreamBytes = defaultMaxStreamBytes
	}
	if c.FailedMemberRetention == 0 {
		c.FailedMemberRetention = 10 * time.Minute
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	c.Join = append([]string(nil), c.Join...)
	c.Meta = append([]byte(nil), c.Meta...)
	c.Keyring = cloneKeys(c.Keyring)
	return c
}

// keys returns the keyring in use: Keyring, or SecretKey alone.
func (c *Config) keys() [][]byte {
	if len(c.Keyring) > 0 {
		return c.Keyring
	}
	if c.SecretKey != nil {
		return [][]byte{c.SecretKey}
	}
	return nil
}

func cloneKeys(keys [][]byte) [][]byte {
	if keys == nil {
		return nil
	}
	out := make([][]byte, len(keys))
	for i, k := range keys {
		out[i] = append([]byte(nil), k...)
	}
	return out
}

// ValidateKeyring checks every key's length (16, 24 or 32 bytes) and that
// none repeats; node checks its Config.Keyring with it too.
func ValidateKeyring(keys [][]byte) error {
	for i, k := range keys {
		switch len(k) {
		case 16, 24, 32:
		default:
			return fmt.Errorf("gossip: Keyring key %d is %d bytes, must be 16, 24 or 32", i, len(k))
		}
		for j := range i {
			if string(keys[j]) == string(k) {
				return fmt.Errorf("gossip: Keyring keys %d and %d are the same", j, i)
			}
		}
	}
	return nil
}

// memberlistConfig builds memberlist's config; delegates are set by Start.
func (c *Config) memberlistConfig(lw *logWriter) (*memberlist.Config, error) {
	var mc *memberlist.Config
	if c.Profile == Local {
		mc = memberlist.DefaultLocalConfig()
		mc.DeadNodeReclaimTime = time.Second
	} else {
		mc = memberlist.DefaultLANConfig()
		mc.DeadNodeReclaimTime = 10 * time.Second
	}
	// Compression (LZW per packet) costs latency on our small messages and
	// makes packet sizes unpredictable; the budget assumes none.
	mc.EnableCompression = false
	mc.Name = c.Name
	mc.Label = c.Cluster
	mc.BindAddr = c.BindAddr
	mc.BindPort = c.BindPort
	mc.AdvertiseAddr = c.AdvertiseAddr
	mc.AdvertisePort = c.AdvertisePort
	if mc.AdvertisePort == 0 {
		mc.AdvertisePort = c.BindPort // 0 too when BindPort is: memberlist then uses the bound port
	}
	mc.PushPullInterval = c.PushPullInterval
	if c.GossipInterval > 0 {
		mc.GossipInterval = c.GossipInterval
	}
	if c.ProbeInterval > 0 {
		mc.ProbeInterval = c.ProbeInterval
		if mc.ProbeTimeout > c.ProbeInterval {
			mc.ProbeTimeout = c.ProbeInterval
		}
	}
	if keys := c.keys(); len(keys) > 0 {
		kr, err := memberlist.NewKeyring(keys[1:], keys[0])
		if err != nil {
			return nil, fmt.Errorf("gossip: keyring: %w", err)
		}
		mc.Keyring = kr
		mc.GossipVerifyIncoming = true
		mc.GossipVerifyOutgoing = true
	}
	mc.Logger = log.New(lw, "", 0)
	if c.Transport != nil {
		mc.Transport = c.Transport
	} else {
		// memberlist's own transport, made as memberlist.Create would (it
		// retries a random port that turns out taken for UDP), so that the
		// limits can wrap it.
		nc := &memberlist.NetTransportConfig{BindAddrs: []string{mc.BindAddr}, BindPort: mc.BindPort, Logger: mc.Logger}
		var nt *memberlist.NetTransport
		var err error
		for range map[bool]int{true: 10, false: 1}[mc.BindPort == 0] {
			if nt, err = memberlist.NewNetTransport(nc); err == nil || !strings.Contains(err.Error(), "address already in use") {
				break
			}
		}
		if err != nil {
			return nil, fmt.Errorf("gossip: could not set up network transport: %w", err)
		}
		if mc.BindPort == 0 {
			mc.BindPort = nt.GetAutoBindPort()
			if mc.AdvertisePort == 0 {
				mc.AdvertisePort = mc.BindPort
			}
		}
		mc.Transport = nt
	}
	mc.LogOutput = nil
	return mc, nil
}
