package demo

import (
	"errors"
	"io"
	"log/slog"
	"time"
)

// Config configures a demo run. A zero field means the default written beside
// it; Run works on its own copy.
type Config struct {
	Nodes    int           // cluster size, and number of naive instances; 0 = 3
	Duration time.Duration // nearcache phase; 0 = 30s
	// NaiveDuration is the naive phase; 0 = Duration/3.
	NaiveDuration time.Duration
	// Latency is added before every database query (a stand-in for a
	// networked database); 0 = 1ms, negative = none.
	Latency    time.Duration
	WriteRatio float64       // share of operations that write; 0 = 0.05; at most 1
	Keys       int           // rows in the source; 0 = 1000
	Workers    int           // workers per node (or naive instance); 0 = 4
	TTL        time.Duration // the naive caches' TTL; 0 = 10s
	// Seed seeds the workload: the same seed issues the same operations in
	// each worker (0 is a seed like any other).
	Seed uint64
	// ReadyTimeout bounds the wait for every node to trust its cache and see
	// the whole cluster; 0 = 15s.
	ReadyTimeout time.Duration
	// WriteTimeout bounds one AckAll invalidation; 0 = 2s.
	WriteTimeout time.Duration

	Out io.Writer // live table and verdict; nil = discard
	// Progress gets one line before each slow start-up step (seeding a
	// database, starting the cluster and waiting for it), so a first run
	// does not sit silent; nil = discard. cmd/nearcache passes stderr.
	Progress io.Writer
	Quiet    bool         // no live table (the verdict is still written to Out)
	Logger   *slog.Logger // the nodes' logger; nil = discard
}

// DefaultConfig returns the defaults, filled in: what `nearcache demo` runs
// without flags.
func DefaultConfig() Config { return Config{}.withDefaults() }

func (c Config) validate() error {
	switch {
	case c.Nodes < 0:
		return errors.New("demo: Nodes must not be negative")
	case c.Nodes > 64:
		return errors.New("demo: Nodes must be at most 64")
	case c.Duration < 0, c.NaiveDuration < 0, c.TTL < 0, c.ReadyTimeout < 0, c.WriteTimeout < 0:
		return errors.New("demo: durations must not be negative")
	case c.WriteRatio < 0 || c.WriteRatio > 1:
		return errors.New("demo: WriteRatio must be between 0 and 1")
	case c.Keys < 0:
		return errors.New("demo: Keys must not be negative")
	case c.Workers < 0:
		return errors.New("demo: Workers must not be negative")
	}
	return nil
}

// withDefaults returns a copy with zero fields set to their defaults.
func (c Config) withDefaults() Config {
	if c.Nodes == 0 {
		c.Nodes = 3
	}
	if c.Duration == 0 {
		c.Duration = 30 * time.Second
	}
	if c.NaiveDuration == 0 {
		c.NaiveDuration = c.Duration / 3
	}
	if c.Latency == 0 {
		c.Latency = time.Millisecond
	}
	if c.Latency < 0 {
		c.Latency = -1 // normalised: "none"
	}
	if c.WriteRatio == 0 {
		c.WriteRatio = 0.05
	}
	if c.Keys == 0 {
		c.Keys = 1000
	}
	if c.Workers == 0 {
		c.Workers = 4
	}
	if c.TTL == 0 {
		c.TTL = 10 * time.Second
	}
	if c.ReadyTimeout == 0 {
		c.ReadyTimeout = 15 * time.Second
	}
	if c.WriteTimeout == 0 {
		c.WriteTimeout = 2 * time.Second
	}
	if c.Out == nil {
		c.Out = io.Discard
	}
	if c.Progress == nil {
		c.Progress = io.Discard
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}
