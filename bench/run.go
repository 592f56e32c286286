package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"slices"
	"time"

	"github.com/nearcache/nearcache/bench/groupcachepeer"
)

// Config configures [Run]. Zero fields take the default written beside them.
type Config struct {
	Dir        string        // scratch directory (databases, gcpeer binary); "" = a new temp dir, removed after
	SourceDSN  string        // "" = embedded SQLite; postgres://... = PostgreSQL through pgx (Latency is then not added)
	Strategies []string      // nil = StrategyNames
	Workloads  []Workload    // nil = DefaultWorkloads(1)
	Instances  int           // application instances per strategy; 0 = 4
	Latency    time.Duration // SQLite only: added per database query; 0 = 1ms; negative = none
	ValueSize  int           // bytes per row body; 0 = 100
	Seed       int64         // workload seed; 0 = 1
	AckAll     bool          // nearcache writers Invalidate with node.AckAll
	Progress   io.Writer     // progress bar (runs longer than a few seconds); nil = none
	Logger     *slog.Logger  // nil = discard
}

func (c Config) validate() error {
	if c.Instances < 0 {
		return errors.New("bench: Instances must not be negative")
	}
	if c.ValueSize < 0 {
		return errors.New("bench: ValueSize must not be negative")
	}
	if c.SourceDSN != "" && !isPostgresDSN(c.SourceDSN) {
		return errors.New("bench: SourceDSN must start with postgres:// or postgresql:// (\"\" = SQLite)")
	}
	for _, s := range c.Strategies {
		if !slices.Contains(StrategyNames, s) {
			return fmt.Errorf("bench: unknown strategy %q (known: %v)", s, StrategyNames)
		}
	}
	for _, w := range c.Workloads {
		if err := w.validate(); err != nil {
			return err
		}
	}
	return nil
}

func (c Config) withDefaults() Config {
	if c.Strategies == nil {
		c.Strategies = StrategyNames
	}
	if c.Workloads == nil {
		c.Workloads = DefaultWorkloads(1)
	}
	if c.Instances == 0 {
		c.Instances = 4
	}
	switch {
	case c.SourceDSN != "":
		c.Latency = -1 // a networked database has its own
	case c.Latency == 0:
		c.Latency = time.Millisecond
	}
	if c.ValueSize == 0 {
		c.ValueSize = 100
	}
	if c.Seed == 0 {
		c.Seed = 1
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Report is a whole run: its settings and one Result per workload and
// strategy.
type Report struct {
	Started    time.Time     `json:"started"`
	Source     string        `json:"source"`                // "sqlite" or "postgres"
	SourceAddr string        `json:"source_addr,omitempty"` // postgres: host:port/database (no credentials)
	Instances  int           `json:"instances"`
	Latency    time.Duration `json:"db_latency_ns"` // added per query; negative = none (always, for postgres)
	ValueSize  int           `json:"value_size"`
	Seed       int64         `json:"seed"`
	AckAll     bool          `json:"nearcache_ack_all"`
	GoVersion  string        `json:"go_version"`
	NumCPU     int           `json:"num_cpu"`
	Results    []Result      `json:"results"`
}

// Run runs every workload against every strategy, one at a time, each on a
// fresh source and fresh caches.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	if cfg.Dir == "" {
		dir, err := os.MkdirTemp("", "nearcache-bench-")
		if err != nil {
			return nil, fmt.Errorf("bench: %w", err)
		}
		defer os.RemoveAll(dir)
		cfg.Dir = dir
	}
	if cfg.SourceDSN != "" {
		if err := checkPostgres(ctx, cfg.SourceDSN); err != nil {
			return nil, err
		}
	}
	env := Env{Instances: cfg.Instances, Logger: cfg.Logger, AckAll: cfg.AckAll}
	if slices.Contains(cfg.Strategies, "redis") || slices.Contains(cfg.Strategies, "redis-csc") {
		rs, err := startRedis(ctx)
		if err != nil {
			return nil, err
		}
		defer rs.stop()
		env.RedisAddr = rs.addr
		env.redis = rs
	}
	if slices.Contains(cfg.Strategies, "groupcache") {
		bin, err := groupcachepeer.Build(ctx, cfg.Dir)
		if err != nil {
			return nil, fmt.Errorf("bench: %w", err)
		}
		env.GroupcacheBinary = bin
	}

	rep := &Report{
		Started: time.Now(), Source: "sqlite", Instances: cfg.Instances, Latency: cfg.Latency, ValueSize: cfg.ValueSize,
		Seed: cfg.Seed, AckAll: cfg.AckAll, GoVersion: runtime.Version(), NumCPU: runtime.NumCPU(),
	}
	if cfg.SourceDSN != "" {
		rep.Source, rep.SourceAddr = "postgres", PostgresAddr(cfg.SourceDSN)
	}
	var total time.Duration
	for _, w := range cfg.Workloads {
		total += time.Duration(len(cfg.Strategies)) * (w.Warmup + w.Duration)
	}
	prog := newProgress(cfg.Progress, total, len(cfg.Workloads)*len(cfg.Strategies))
	defer prog.stop()
	for _, w := range cfg.Workloads {
		w = w.withDefaults()
		for _, name := range cfg.Strategies {
			prog.begin(w.Name+" "+name, w.Warmup+w.Duration)
			res, err := runOne(ctx, cfg, env, w, name)
			prog.end()
			if err != nil {
				return rep, fmt.Errorf("bench: %s on %s: %w", name, w.Name, err)
			}
			rep.Results = append(rep.Results, res)
		}
	}
	return rep, nil
}
