package demo

import (
	"time"

	"github.com/nearcache/nearcache/internal/hist"
)

// Result is what a run measured; it marshals to the JSON that
// `nearcache demo --json` writes.
type Result struct {
	Nearcache PhaseResult  `json:"nearcache"`
	Naive     PhaseResult  `json:"naive"`
	Config    ResultConfig `json:"config"`
}

// ResultConfig is the configuration a run used, defaults filled in.
type ResultConfig struct {
	Nodes         int     `json:"nodes"`
	Duration      string  `json:"duration"`
	NaiveDuration string  `json:"naive_duration"`
	Latency       string  `json:"latency"`
	WriteRatio    float64 `json:"write_ratio"`
	Keys          int     `json:"keys"`
	Workers       int     `json:"workers"`
	TTL           string  `json:"ttl"`
	Seed          uint64  `json:"seed"`
	ZipfS         float64 `json:"zipf_s"`
}

func resultConfig(c Config) ResultConfig {
	return ResultConfig{
		Nodes:         c.Nodes,
		Duration:      c.Duration.String(),
		NaiveDuration: c.NaiveDuration.String(),
		Latency:       max(c.Latency, 0).String(),
		WriteRatio:    c.WriteRatio,
		Keys:          c.Keys,
		Workers:       c.Workers,
		TTL:           c.TTL.String(),
		Seed:          c.Seed,
		ZipfS:         zipfS,
	}
}

// PhaseResult is one phase's totals over every instance.
type PhaseResult struct {
	Seconds     float64 `json:"seconds"` // how long the workload ran
	Reads       uint64  `json:"reads"`   // successful reads
	StaleReads  uint64  `json:"stale_reads"`
	StaleRate   float64 `json:"stale_rate"` // StaleReads / Reads
	HitRatio    float64 `json:"hit_ratio"`  // cache hits / cache lookups
	DBLoads     uint64  `json:"db_loads"`   // queries of the source by the caches
	Writes      uint64  `json:"writes"`     // writes whose invalidation returned
	WriteErrors uint64  `json:"write_errors"`
	ReadErrors  uint64  `json:"read_errors"`
	ReadP50us   float64 `json:"read_p50_us"`
	ReadP99us   float64 `json:"read_p99_us"`
	// JudgeGaps counts writes after which some reads may have escaped the
	// stale check (see tracker); 0 in practice.
	JudgeGaps uint64 `json:"judge_gaps"`
	// Invalidations from other nodes (nearcache only).
	InvalidationsReceived uint64       `json:"invalidations_received,omitempty"`
	InvalidationsApplied  uint64       `json:"invalidations_applied,omitempty"`
	PropagationP50us      float64      `json:"propagation_p50_us,omitempty"`
	PropagationP99us      float64      `json:"propagation_p99_us,omitempty"`
	Instances             []NodeResult `json:"instances"`
}

// NodeResult is one node's (or naive instance's) figures.
type NodeResult struct {
	Name                  string  `json:"name"`
	Reads                 uint64  `json:"reads"`
	StaleReads            uint64  `json:"stale_reads"`
	HitRatio              float64 `json:"hit_ratio"`
	DBLoads               uint64  `json:"db_loads"`
	Writes                uint64  `json:"writes"`
	InvalidationsReceived uint64  `json:"invalidations_received,omitempty"`
	InvalidationsApplied  uint64  `json:"invalidations_applied,omitempty"`
	PropagationP50us      float64 `json:"propagation_p50_us,omitempty"`
	PropagationP99us      float64 `json:"propagation_p99_us,omitempty"`
}

// liveRow is one instance's line in the live table.
type liveRow struct {
	name          string
	hits, lookups uint64
	loads         uint64
	invalidations bool // whether the next fields mean anything (nearcache)
	trusted       bool
	received      uint64
	applied       uint64
	propP50       time.Duration
	propP99       time.Duration
}

func ratio(num, den uint64) float64 {
	if den == 0 {
		return 0
	}
	return float64(num) / float64(den)
}

func micros(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

// summarize builds a phase's result from its workload and final live rows,
// and, when prop is not nil, the nodes' merged propagation histogram.
func summarize(w *workload, rows []liveRow, elapsed time.Duration, dbLoads uint64, prop *hist.Concurrent) PhaseResult {
	var p PhaseResult
	p.Seconds = elapsed.Seconds()
	var hits, lookups uint64
	for i, r := range rows {
		reads, stale, readErrs, writes, writeErrs := w.instanceTotals(i)
		p.Reads += reads
		p.StaleReads += stale
		p.ReadErrors += readErrs
		p.Writes += writes
		p.WriteErrors += writeErrs
		hits += r.hits
		lookups += r.lookups
		p.InvalidationsReceived += r.received
		p.InvalidationsApplied += r.applied
		p.Instances = append(p.Instances, NodeResult{
			Name:                  r.name,
			Reads:                 reads,
			StaleReads:            stale,
			HitRatio:              ratio(r.hits, r.lookups),
			DBLoads:               r.loads,
			Writes:                writes,
			InvalidationsReceived: r.received,
			InvalidationsApplied:  r.applied,
			PropagationP50us:      micros(r.propP50),
			PropagationP99us:      micros(r.propP99),
		})
	}
	p.StaleRate = ratio(p.StaleReads, p.Reads)
	p.JudgeGaps = w.gaps.Load()
	p.HitRatio = ratio(hits, lookups)
	p.DBLoads = dbLoads
	lat := w.latency()
	p.ReadP50us = micros(lat.Quantile(0.50))
	p.ReadP99us = micros(lat.Quantile(0.99))
	if prop != nil {
		p.PropagationP50us = micros(prop.Quantile(0.50))
		p.PropagationP99us = micros(prop.Quantile(0.99))
	}
	return p
}
