package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/nearcache/nearcache/gossip"
)

// DegradedMode says what reads do while the node does not trust its cache
// (it has not heard the cluster within MaxStaleness, G5).
type DegradedMode int

const (
	// DegradedReadThrough serves every read from the loader (coalesced per
	// key), without caching. The safe default: correct, and slower.
	DegradedReadThrough DegradedMode = iota
	// DegradedFail fails reads with [ErrDegraded].
	DegradedFail
)

// Config configures a [Node]. The zero value of a field means its default,
// written beside it. Start copies the Config; later changes have no effect.
type Config struct {
	// Name is unique in the cluster; required. A node restarted with the same
	// name is recognised as a new incarnation of it.
	Name string

	// Standalone runs a single node with no gossip: nothing listens, no peer is
	// ever heard, and every invalidation is local. Cluster fields are ignored.
	Standalone bool

	// Cluster names the cluster (at most 32 bytes; "" = "nearcache"). Nodes
	// with different names ignore each other's packets, so two clusters on
	// one network (staging and production, two services) never merge, even
	// when a node is handed an address the other cluster used to gossip with.
	// Every node of a cluster must use the same name.
	Cluster string

	BindAddr      string   // gossip bind address; "" = "0.0.0.0"
	BindPort      int      // gossip port; 0 = any free port (see Node.Addr)
	AdvertiseAddr string   // "" = chosen by memberlist from the bind address
	AdvertisePort int      // 0 = the bound port
	Join          []string // seeds, "host:port"; DNS names are resolved on every attempt; empty = first node
	// SecretKey encrypts gossip and the fill channel (16, 24 or 32 bytes:
	// AES-128/192/256; each use gets its own subkey, derived with HKDF);
	// peers without it are refused. nil = plaintext: only on a trusted
	// network. It is Keyring with one key.
	SecretKey []byte
	// Keyring holds several cluster keys, for rotation without a split (see
	// Node.SetKeyring): every one is accepted, the first (the primary) is
	// used to send. Set Keyring or SecretKey, not both.
	Keyring [][]byte
	// Meta is advertised to the other members: at most gossip.MaxMetaLen
	// bytes less the 4 nearcache prefixes (the fill port).
	Meta []byte

	// MaxStaleness bounds how stale a served value can be when this node is
	// cut off (G5): a node that has not heard every live peer's invalidation
	// stream within it stops serving cached values. 0 = 5s.
	MaxStaleness time.Duration
	// Degraded says what reads do meanwhile. Default DegradedReadThrough.
	Degraded DegradedMode
	// LoadTimeout bounds one shared load; a fill slower than it is not cached.
	// 0 = 5s.
	LoadTimeout time.Duration
	// MaxClockSkew bounds the difference between the wall clocks of the nodes,
	// which [ClockVersions] groups rely on. 0 = 100ms.
	MaxClockSkew time.Duration
	// MaxConcurrentLoads caps the loader calls running at once on this node,
	// across groups; further loads queue until a slot frees or their
	// LoadTimeout ends (then they fail with ErrOverloaded). 0 = 64.
	MaxConcurrentLoads int
	// FloorRetention is how long a key's version floor is remembered. It must
	// exceed MaxStaleness + LoadTimeout (see package local). 0 = 5m.
	FloorRetention time.Duration

	// Owner fills (G6): a miss asks the key's owner, which loads once for the
	// whole cluster. FillAddr is where this node answers its peers; "" = the
	// bind address with any free port (advertised in gossip metadata).
	// OwnerTimeout bounds the wait for an owner before loading here instead,
	// within the same LoadTimeout; 0 = LoadTimeout/2. Must be below LoadTimeout. DisableOwnerFills keeps every load local (per-node coalescing
	// only).
	FillAddr          string
	OwnerTimeout      time.Duration
	DisableOwnerFills bool
	// FillListener, when set, is where this node answers its peers' fills
	// instead of a TCP listener on FillAddr (leave FillAddr ""). Its Addr()
	// must be host:port with a non-zero port: the port is advertised, and
	// peers dial it at this node's gossip host. Start takes it over: the
	// node's Close closes it, and so does a Start that fails after checking
	// the Config. FillDial, when set, opens the connections to owners
	// instead of a TCP dialer (its ctx bounds the dial only). Tests hand in
	// gossip/gossiptest.FillNetwork's, so fills run in memory under the fake
	// network's partitions. nil = real TCP, for each.
	FillListener net.Listener
	FillDial     func(ctx context.Context, addr string) (net.Conn, error)

	// Gossip tuning. Profile: gossip.LAN (default) or gossip.Local (tight
	// timeouts for tests on one machine). Transport: nil = real UDP/TCP
	// sockets; tests inject faults with gossip/gossiptest.
	Profile   gossip.Profile
	Transport gossip.Transport
	// PushPullInterval is the anti-entropy period; 0 = the profile's.
	PushPullInterval time.Duration

	Logger   *slog.Logger // nil = discard
	Observer Observer     // nil = none; see package metrics
}

// DefaultConfig returns the defaults for a production node named name.
func DefaultConfig(name string) Config {
	return Config{Name: name, Profile: gossip.LAN}
}

// DefaultLocalConfig returns a configuration with tight timeouts, for tests
// and demos of several nodes on one machine (127.0.0.1, any free port).
func DefaultLocalConfig(name string) Config {
	return Config{
		Name:         name,
		BindAddr:     "127.0.0.1",
		Profile:      gossip.Local,
		MaxStaleness: 2 * time.Second,
		LoadTimeout:  2 * time.Second,
	}
}

func (c Config) validate() error {
	switch {
	case c.Name == "":
		return errors.New("node: Name is required")
	case c.OwnerTimeout < 0:
		return errors.New("node: OwnerTimeout must not be negative")
	case c.MaxConcurrentLoads < 0:
		return errors.New("node: MaxConcurrentLoads must not be negative")
	case c.MaxStaleness < 0, c.LoadTimeout < 0, c.MaxClockSkew < 0, c.FloorRetention < 0, c.PushPullInterval < 0:
		return errors.New("node: durations must not be negative")
	case c.FillListener != nil && c.FillAddr != "":
		return errors.New("node: FillAddr and FillListener are both set")
	case c.FillListener != nil && (c.Standalone || c.DisableOwnerFills):
		return errors.New("node: FillListener is set but owner fills are off (Standalone or DisableOwnerFills)")
	case c.Degraded != DegradedReadThrough && c.Degraded != DegradedFail:
		return fmt.Errorf("node: unknown Degraded mode %d", c.Degraded)
	}
	switch len(c.SecretKey) {
	case 0, 16, 24, 32:
	default:
		return fmt.Errorf("node: SecretKey must be 16, 24 or 32 bytes, not %d", len(c.SecretKey))
	}
	if len(c.SecretKey) > 0 && len(c.Keyring) > 0 {
		return errors.New("node: set SecretKey or Keyring, not both")
	}
	if err := validKeyring(c.Keyring); err != nil {
		return err
	}
	d := c.withDefaults()
	// The gossip layer's limits (name, cluster, meta, ports) are checked
	// once, there, on the config this node would give it; the largest fill
	// port makes the metadata header as long as it can be.
	if !c.Standalone {
		if err := d.gossipConfig(65535, (*handler)(nil)).Validate(); err != nil {
			return fmt.Errorf("node: %w", err)
		}
	}
	if d.OwnerTimeout >= d.LoadTimeout {
		return fmt.Errorf("node: OwnerTimeout (%v) must be below LoadTimeout (%v): a fallback load needs time too", d.OwnerTimeout, d.LoadTimeout)
	}
	if d.FloorRetention <= d.MaxStaleness+d.LoadTimeout {
		return fmt.Errorf("node: FloorRetention (%v) must exceed MaxStaleness + LoadTimeout (%v)",
			d.FloorRetention, d.MaxStaleness+d.LoadTimeout)
	}
	return nil
}

// withDefaults returns a copy with zero fields set to their defaults.
func (c Config) withDefaults() Config {
	if c.MaxStaleness == 0 {
		c.MaxStaleness = 5 * time.Second
	}
	if c.LoadTimeout == 0 {
		c.LoadTimeout = 5 * time.Second
	}
	if c.MaxClockSkew == 0 {
		c.MaxClockSkew = 100 * time.Millisecond
	}
	if c.OwnerTimeout == 0 {
		c.OwnerTimeout = c.LoadTimeout / 2
	}
	if c.FillAddr == "" {
		host := c.BindAddr
		if host == "" {
			host = "0.0.0.0"
		}
		c.FillAddr = net.JoinHostPort(host, "0")
	}
	if c.MaxConcurrentLoads == 0 {
		c.MaxConcurrentLoads = 64
	}
	if c.FloorRetention == 0 {
		c.FloorRetention = 5 * time.Minute
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Observer == nil {
		c.Observer = nopObserver{}
	}
	c.Join = append([]string(nil), c.Join...)
	c.SecretKey = append([]byte(nil), c.SecretKey...)
	if c.Keyring != nil {
		ks := make([][]byte, len(c.Keyring))
		for i, k := range c.Keyring {
			ks[i] = append([]byte(nil), k...)
		}
		c.Keyring = ks
	}
	c.Meta = append([]byte(nil), c.Meta...)
	return c
}
