package bench

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nearcache/nearcache/internal/hist"
)

// seriesInterval is the period of the database-load time series.
const seriesInterval = 100 * time.Millisecond

// Result is what one strategy did on one workload. Durations are in
// nanoseconds in JSON.
type Result struct {
	Strategy  string `json:"strategy"`
	Workload  string `json:"workload"`
	Instances int    `json:"instances"`

	Seconds     float64 `json:"seconds"` // measured time (warm-up excluded)
	Reads       uint64  `json:"reads"`
	Writes      uint64  `json:"writes"`
	Errors      uint64  `json:"errors"`
	FirstError  string  `json:"first_error,omitempty"`
	ReadsPerSec float64 `json:"reads_per_sec"`

	ReadP50  time.Duration `json:"read_p50_ns"`
	ReadP99  time.Duration `json:"read_p99_ns"`
	ReadP999 time.Duration `json:"read_p999_ns"`
	ReadMax  time.Duration `json:"read_max_ns"`
	WriteP50 time.Duration `json:"write_p50_ns"`
	WriteP99 time.Duration `json:"write_p99_ns"`

	DBQueries       uint64  `json:"db_queries"` // read queries
	DBQueriesPerSec float64 `json:"db_queries_per_sec"`
	// Expiries is HotKeys x measured time / TTL on a hot-key workload (0
	// elsewhere), and DBQueriesPerExpiry = DBQueries / Expiries.
	Expiries           float64 `json:"hot_key_expiries,omitempty"`
	DBQueriesPerExpiry float64 `json:"db_queries_per_expiry,omitempty"`

	StaleReads   uint64        `json:"stale_reads"`
	StaleRate    float64       `json:"stale_rate"` // StaleReads / Reads
	StalenessP99 time.Duration `json:"staleness_p99_ns"`
	StalenessMax time.Duration `json:"staleness_max_ns"`

	// HeapPerInstance is this process's live heap after the run minus before
	// the strategy started (both after a GC), divided by Instances.
	HeapPerInstance int64 `json:"heap_per_instance_bytes"`
	// ExternalMemory is memory outside this process: redis-server's
	// used_memory, or the gcpeer children's summed RSS. 0 = none.
	ExternalMemory int64 `json:"external_memory_bytes"`

	Latency  []hist.Point `json:"read_latency_quantiles"`    // read latency distribution
	DBSeries []float64    `json:"db_queries_per_sec_series"` // one point per 100ms from the start (warm-up included)
	Warmup   float64      `json:"warmup_seconds"`

	// Restart is how long stopping and restarting one instance took on a
	// churn workload (its workers waited meanwhile); 0 = no restart.
	Restart time.Duration `json:"restart_ns,omitempty"`
}

// workerStats is one worker's counts, merged after the run.
type workerStats struct {
	reads, writes, errs, stale uint64
	firstErr                   error
	lat, wlat, staleness       hist.Histogram
}

func heapAlloc() int64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc)
}

// runOne runs workload w against strategy name on a fresh source.
func runOne(ctx context.Context, cfg Config, env Env, w Workload, name string) (Result, error) {
	res := Result{Strategy: name, Workload: w.Name, Instances: cfg.Instances, Warmup: w.Warmup.Seconds()}
	src, err := OpenSource(ctx, SourceConfig{DSN: cfg.SourceDSN, Dir: cfg.Dir, Keys: w.Keys, ValueSize: cfg.ValueSize, Latency: cfg.Latency})
	if err != nil {
		return res, err
	}
	defer src.Close()
	if env.redis != nil {
		if err := env.redis.flush(ctx); err != nil {
			return res, fmt.Errorf("bench: FLUSHALL: %w", err)
		}
	}
	env.Source = src
	env.TTL = w.TTL
	heap0 := heapAlloc()
	st, err := newStrategy(ctx, name, env)
	if err != nil {
		return res, err
	}
	closed := false
	defer func() {
		if !closed {
			_ = st.Close()
		}
	}()

	epoch := time.Now()
	tr := newTracker(w.Keys, epoch)
	warmEnd := int64(w.Warmup)
	end := int64(w.Warmup + w.Duration)
	stats := make([]*workerStats, cfg.Instances*w.Workers)

	// The database-load series, sampled beside the workers.
	var series []float64
	var dbAtWarm uint64
	sampled := make(chan struct{})
	stopSampling := make(chan struct{})
	go func() {
		defer close(sampled)
		t := time.NewTicker(seriesInterval)
		defer t.Stop()
		last, warmSeen := src.Reads(), w.Warmup == 0
		for {
			select {
			case <-stopSampling:
				return
			case <-t.C:
			}
			n := src.Reads()
			series = append(series, float64(n-last)/seriesInterval.Seconds())
			last = n
			if !warmSeen && tr.now() >= warmEnd {
				dbAtWarm, warmSeen = n, true
			}
		}
	}()

	// On a churn workload the last instance's workers hold gate for reading
	// around every operation, and the restart holds it for writing.
	var gate *sync.RWMutex
	rs, canRestart := st.(restarter)
	if w.Churn && canRestart {
		gate = new(sync.RWMutex)
	}
	var wg sync.WaitGroup
	for inst := range cfg.Instances {
		for wk := range w.Workers {
			ws := &workerStats{}
			stats[inst*w.Workers+wk] = ws
			p := newPicker(w, cfg.Seed*1_000_003+int64(inst*w.Workers+wk))
			var g *sync.RWMutex
			if inst == cfg.Instances-1 {
				g = gate
			}
			wg.Go(func() { work(ctx, st, tr, p, w, inst, ws, g, warmEnd, end) })
		}
	}
	var restartErr error
	if gate != nil {
		t := time.NewTimer(w.Warmup + w.Duration/2)
		select {
		case <-ctx.Done():
		case <-t.C:
			gate.Lock()
			began := time.Now()
			restartErr = rs.restart(ctx, cfg.Instances-1)
			res.Restart = time.Since(began)
			gate.Unlock()
		}
		t.Stop()
	}
	wg.Wait()
	measured := time.Duration(tr.now() - warmEnd)
	close(stopSampling)
	<-sampled
	dbTotal := src.Reads()
	if w.Warmup == 0 {
		dbAtWarm = 0
	}

	if restartErr != nil {
		return res, fmt.Errorf("restart: %w", restartErr)
	}
	res.HeapPerInstance = (heapAlloc() - heap0) / int64(cfg.Instances)
	res.ExternalMemory = externalMemory(ctx, env, st)
	closed = true
	if err := st.Close(); err != nil {
		return res, fmt.Errorf("close: %w", err)
	}

	var lat, wlat, staleness hist.Histogram
	for _, ws := range stats {
		res.Reads += ws.reads
		res.Writes += ws.writes
		res.Errors += ws.errs
		res.StaleReads += ws.stale
		if ws.firstErr != nil && res.FirstError == "" {
			res.FirstError = ws.firstErr.Error()
		}
		lat.Merge(&ws.lat)
		wlat.Merge(&ws.wlat)
		staleness.Merge(&ws.staleness)
	}
	res.Seconds = measured.Seconds()
	res.ReadsPerSec = float64(res.Reads) / res.Seconds
	res.ReadP50, res.ReadP99, res.ReadP999, res.ReadMax = lat.Quantile(0.5), lat.Quantile(0.99), lat.Quantile(0.999), lat.Max()
	res.WriteP50, res.WriteP99 = wlat.Quantile(0.5), wlat.Quantile(0.99)
	res.DBQueries = dbTotal - dbAtWarm
	res.DBQueriesPerSec = float64(res.DBQueries) / res.Seconds
	if w.HotKeys > 0 && w.TTL > 0 {
		res.Expiries = float64(w.HotKeys) * measured.Seconds() / w.TTL.Seconds()
		res.DBQueriesPerExpiry = float64(res.DBQueries) / res.Expiries
	}
	if res.Reads > 0 {
		res.StaleRate = float64(res.StaleReads) / float64(res.Reads)
	}
	res.StalenessP99, res.StalenessMax = staleness.Quantile(0.99), staleness.Max()
	res.Latency = lat.Distribution()
	res.DBSeries = series
	if res.Errors > 0 && res.Errors*10 > res.Reads+res.Writes {
		return res, fmt.Errorf("%d of %d operations failed, first: %s", res.Errors, res.Reads+res.Writes+res.Errors, res.FirstError)
	}
	return res, nil
}

// work is one closed-loop worker of instance inst until end (ns since the
// tracker's epoch); it counts only what starts after warmEnd. gate, when not
// nil, is held for reading around each operation (the wait is not timed).
func work(ctx context.Context, st Strategy, tr *tracker, p *picker, w Workload, inst int, ws *workerStats, gate *sync.RWMutex, warmEnd, end int64) {
	for ctx.Err() == nil {
		if gate != nil {
			gate.RLock()
		}
		more := step(ctx, st, tr, p, w, inst, ws, warmEnd, end)
		if gate != nil {
			gate.RUnlock()
		}
		if !more {
			return
		}
	}
}

// step runs one operation; false once the run is over.
func step(ctx context.Context, st Strategy, tr *tracker, p *picker, w Workload, inst int, ws *workerStats, warmEnd, end int64) bool {
	// Choose the operation before the clock starts: the Zipf draw and the
	// key's string are the harness's work, not the read's.
	i := p.next()
	key := Key(i)
	write := p.write(w.WriteFrac)
	began := tr.now()
	if began >= end {
		return false
	}
	counted := began >= warmEnd
	if write {
		ver, err := st.Write(ctx, inst, key)
		done := tr.now()
		if err != nil {
			ws.fail(err)
			return true
		}
		tr.written(i, ver, done)
		if counted {
			ws.writes++
			ws.wlat.Record(time.Duration(done - began))
		}
		return true
	}
	v, err := st.Get(ctx, inst, key)
	took := time.Duration(tr.now() - began)
	if err != nil {
		ws.fail(err)
		return true
	}
	if counted {
		ws.reads++
		ws.lat.Record(took)
		if stale, by := tr.stale(i, v.Version, began); stale {
			ws.stale++
			ws.staleness.Record(by)
		}
	}
	return true
}

func (ws *workerStats) fail(err error) {
	ws.errs++
	if ws.firstErr == nil {
		ws.firstErr = err
	}
}

// externalMemory is the strategy's memory outside this process.
func externalMemory(ctx context.Context, env Env, st Strategy) int64 {
	switch s := st.(type) {
	case *redisCache, *redisCSC:
		if env.redis != nil {
			return env.redis.usedMemory(ctx)
		}
	case *groupcacheStrategy:
		var total int64
		for _, pid := range s.cluster.Pids() {
			total += rssBytes(pid)
		}
		return total
	}
	return 0
}

// rssBytes returns a process's resident set size from /proc (Linux), or 0.
func rssBytes(pid int) int64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	for line := range strings.Lines(string(b)) {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(rest)
			if len(f) > 0 {
				kb, _ := strconv.ParseInt(f[0], 10, 64)
				return kb << 10
			}
		}
	}
	return 0
}
