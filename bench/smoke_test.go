package bench

import (
	"context"
	"errors"
	"github.com/nearcache/nearcache/internal/needs"
	"testing"
	"time"
)

// TestSmoke runs every strategy, Redis included, for a few seconds and
// asserts only correctness facts, never speed: with AckAll writes nearcache
// serves no stale read at all; local-ttl and groupcache do serve stale reads
// once others write; no cache never does (the stale judge has no false
// positives); and nearcache's database queries per hot-key expiry stay at or
// below the number of instances (per-node coalescing at worst). The writes
// workload restarts one instance halfway, so a rejoining node is covered.
func TestSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("starts redis-server, gcpeer processes and nearcache clusters")
	}
	cfg := smokeConfig(t.TempDir(), 1200*time.Millisecond, time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	rep, err := Run(ctx, cfg)
	if errors.Is(err, ErrNoRedis) {
		needs.Missing(t, "redis-server", "make bench-deps (apt-get install redis-server)")
	}
	if err != nil {
		t.Fatal(err)
	}
	checkSmoke(t, rep, cfg.Instances, StrategyNames)
}

// smokeInstances is the smoke runs' instance count.
const smokeInstances = 3

// smokeConfig is the smoke runs' configuration: a writes workload with a
// churn restart, and a hot-key storm, measured for the given durations.
func smokeConfig(dir string, writes, storm time.Duration) Config {
	return Config{
		Dir:       dir,
		Instances: smokeInstances,
		AckAll:    true,
		Workloads: []Workload{
			{Name: "writes", Keys: 2000, WriteFrac: 0.1, TTL: 10 * time.Second, Warmup: 200 * time.Millisecond, Duration: writes, Workers: 2, Churn: true},
			{Name: "storm", Keys: 100, HotKeys: 4, TTL: 100 * time.Millisecond, Warmup: 200 * time.Millisecond, Duration: storm, Workers: 8},
		},
	}
}

// checkSmoke asserts the correctness facts of a smokeConfig run (see
// TestSmoke) on every workload and each of strategies.
func checkSmoke(t *testing.T, rep *Report, instances int, strategies []string) {
	t.Helper()
	got := map[[2]string]Result{}
	for _, r := range rep.Results {
		got[[2]string{r.Workload, r.Strategy}] = r
	}
	for _, w := range []string{"writes", "storm"} {
		for _, s := range strategies {
			t.Run(w+"/"+s, func(t *testing.T) {
				r, ok := got[[2]string{w, s}]
				if !ok {
					t.Fatal("no result")
				}
				if r.Reads == 0 || r.Errors > 0 {
					t.Fatalf("%d reads, %d errors (first: %s)", r.Reads, r.Errors, r.FirstError)
				}
				if w == "writes" && r.Writes == 0 {
					t.Fatal("no writes in a workload with writes")
				}
				if w == "writes" && s != "groupcache" && r.Restart == 0 {
					t.Error("the churn workload restarted no instance")
				}
				switch {
				case s == "none" && r.StaleReads > 0:
					t.Errorf("no cache served %d stale reads: the stale judge is wrong", r.StaleReads)
				case s == "nearcache" && r.StaleReads > 0:
					t.Errorf("nearcache with AckAll writes served %d stale reads (max staleness %v)", r.StaleReads, r.StalenessMax)
				case w == "writes" && (s == "local-ttl" || s == "groupcache") && r.StaleReads == 0:
					t.Errorf("%s served no stale read although other instances wrote: the stale judge misses them", s)
				case w == "storm" && s == "nearcache" && r.DBQueriesPerExpiry > float64(instances):
					t.Errorf("nearcache: %.2f database queries per hot-key expiry, want <= %d", r.DBQueriesPerExpiry, instances)
				}
				t.Logf("%s/%s: %d reads, %d writes, stale %d, db q/expiry %.2f", w, s, r.Reads, r.Writes, r.StaleReads, r.DBQueriesPerExpiry)
			})
		}
	}
}
