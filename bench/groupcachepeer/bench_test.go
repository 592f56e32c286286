package groupcachepeer

import (
	"net/http"
	"slices"
	"strconv"
	"testing"
	"time"
)

// BenchmarkGroupcacheRemoteFill is the baseline of nearcache's remote fill:
// a non-owner's peer fetch of a key whose value is already in the owner's
// memory. Two gcpeer processes A and B; this process is the requesting
// peer, doing what groupcache's httpGetter does (Fetcher) against A for a
// key A owns, warmed first. allocs/op are this process's (client side);
// p50-ns and p99-ns are per-fetch latencies.
func BenchmarkGroupcacheRemoteFill(b *testing.B) {
	bin := buildTB(b)
	for _, size := range []int{128, 4096} {
		b.Run("value="+strconv.Itoa(size), func(b *testing.B) {
			c := StartTB(b, Config{Binary: bin, Peers: 2, ValueSize: size})
			// http.DefaultTransport, as httpGetter with a nil HTTPPool.Transport.
			b.Cleanup(http.DefaultTransport.(*http.Transport).CloseIdleConnections)
			f := NewFetcher(nil)
			owner := c.URLs()[0]
			key, err := c.KeyOwnedBy(owner)
			if err != nil {
				b.Fatal(err)
			}
			ctx := b.Context()
			if _, err := f.Value(ctx, owner, key); err != nil { // warm: A's getter fills mainCache
				b.Fatal(err)
			}
			statsClient := &http.Client{Transport: newTransport(b)}
			before, err := c.Stats(ctx, statsClient, owner)
			if err != nil {
				b.Fatal(err)
			}

			samples := make([]time.Duration, 1<<16)
			n := 0
			b.ReportAllocs()
			for b.Loop() {
				start := time.Now()
				v, err := f.Value(ctx, owner, key)
				samples[n%len(samples)] = time.Since(start)
				n++
				if err != nil || len(v) != size {
					b.Fatalf("fetch: %d bytes, %v", len(v), err)
				}
			}
			b.StopTimer()

			after, err := c.Stats(ctx, statsClient, owner)
			if err != nil {
				b.Fatal(err)
			}
			// Served from A's memory: the getter ran once, at warm-up, and
			// every fetch reached A.
			if after.GetterCalls != 1 || after.ServerRequests-before.ServerRequests != int64(n) {
				b.Fatalf("owner getter calls %d (want 1), server requests %d (want %d)",
					after.GetterCalls, after.ServerRequests-before.ServerRequests, n)
			}
			s := slices.Clone(samples[:min(n, len(samples))])
			slices.Sort(s)
			b.ReportMetric(float64(s[len(s)/2].Nanoseconds()), "p50-ns")
			b.ReportMetric(float64(s[len(s)*99/100].Nanoseconds()), "p99-ns")
		})
	}
}
