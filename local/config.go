package local

import (
	"errors"
	"math"
	"time"
)

// Config sizes a [Cache]. A zero field means the default written in its comment.
type Config struct {
	MaxCost        int64         // sum of entry costs kept (the caller passes each entry's cost, ~bytes); 0 = 64 MiB
	NumCounters    int64         // ristretto admission counters; 0 = max(1e4, 10*MaxCost/256)
	BufferItems    int64         // ristretto BufferItems; 0 = 64
	FloorRetention time.Duration // how long a key floor is kept after it was last raised; 0 = 5m
	MaxFloors      int           // exact key floors kept, and tag records kept; 0 = 1<<20
	Jitter         float64       // TTLs are shortened by a random fraction in [0, Jitter); 0 = 0.1; negative = none; must be < 1
	// Grace keeps an entry in the store this long past its ExpireAt, for a
	// caller that may serve it stale when its source fails: Get then returns
	// expired entries and the caller must check ExpireAt. 0 = none.
	Grace   time.Duration
	Metrics bool // ristretto's own counters (hits, misses, cost added/evicted); off by default
	// SweepEvery is how often expired entries are deleted (expiry is lazy:
	// a Get of an expired entry misses, but the entry stays until a sweep,
	// a fill of its key or ristretto's eviction); 0 = 30s, negative = never.
	SweepEvery time.Duration
	// Epoch is when the store's clock ([Cache.Now]) reads 1; zero = New's
	// time. Take it from time.Now (a parsed or rounded time has no monotonic
	// reading, and the store would then count on the wall clock): a caller
	// that shares it can hand its own clock readings to [Cache.GetAt].
	Epoch time.Time
}

// DefaultConfig returns the defaults written out.
func DefaultConfig() Config {
	return Config{}.withDefaults()
}

func (c Config) validate() error {
	switch {
	case c.MaxCost < 0:
		return errors.New("local: MaxCost must not be negative")
	case c.NumCounters < 0:
		return errors.New("local: NumCounters must not be negative")
	case c.BufferItems < 0:
		return errors.New("local: BufferItems must not be negative")
	case c.FloorRetention < 0:
		return errors.New("local: FloorRetention must not be negative")
	case c.MaxFloors < 0:
		return errors.New("local: MaxFloors must not be negative")
	case math.IsNaN(c.Jitter) || math.IsInf(c.Jitter, 0):
		return errors.New("local: Jitter must be a finite number")
	case c.Grace < 0:
		return errors.New("local: Grace must not be negative")
	case c.Jitter >= 1:
		return errors.New("local: Jitter must be less than 1")
	}
	return nil
}

// withDefaults returns a copy with every zero field set to its default.
func (c Config) withDefaults() Config {
	if c.MaxCost == 0 {
		c.MaxCost = 64 << 20
	}
	if c.NumCounters == 0 {
		c.NumCounters = max(10_000, 10*c.MaxCost/256)
	}
	if c.BufferItems == 0 {
		c.BufferItems = 64
	}
	if c.FloorRetention == 0 {
		c.FloorRetention = 5 * time.Minute
	}
	if c.MaxFloors == 0 {
		c.MaxFloors = 1 << 20
	}
	if c.SweepEvery == 0 {
		c.SweepEvery = 30 * time.Second
	}
	switch {
	case c.Jitter == 0:
		c.Jitter = 0.1
	case c.Jitter < 0:
		c.Jitter = 0
	}
	return c
}
