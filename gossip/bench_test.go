package gossip

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"sync/atomic"
	"testing"
	"time"
)

// seenHandler reports the arrival time of the invalidation whose Key is the
// current target.
type seenHandler struct {
	target  atomic.Pointer[string]
	seen    chan time.Time
	changes atomic.Int64 // MembersChanged calls
}

func (h *seenHandler) Invalidations(b []Invalidation) {
	now := time.Now()
	t := h.target.Load()
	for _, i := range b {
		if t != nil && i.Key == *t {
			h.seen <- now
		}
	}
}
func (h *seenHandler) Unrepairable(string)     {}
func (h *seenHandler) MembersChanged([]Member) { h.changes.Add(1) }

// BenchmarkPropagation measures, on real loopback sockets (Local profile),
// the time from the start of Publish (conservative: it includes Publish
// itself) until the LAST other node's Handler has the invalidation.
// Reports p50_ms and p99_ms.
func BenchmarkPropagation(b *testing.B) {
	for _, n := range []int{3, 10, 30} {
		b.Run(fmt.Sprintf("nodes=%d", n), func(b *testing.B) {
			seen := make(chan time.Time, 4*n)
			hs := make([]*seenHandler, n)
			nodes := startCluster(b, n, func(i int, cfg *Config) {
				hs[i] = &seenHandler{seen: seen}
				cfg.Handler = hs[i]
			})
			ctx := context.Background()
			var lat []time.Duration
			i := 0
			b.ReportAllocs()
			for b.Loop() {
				i++
				key := "k" + strconv.Itoa(i)
				for _, h := range hs {
					h.target.Store(&key)
				}
				start := time.Now()
				if err := nodes[i%n].c.Publish(ctx, []Invalidation{{Group: "g", Kind: KindKey, Key: key, Version: uint64(i)}}); err != nil {
					b.Fatal(err)
				}
				var last time.Time
				timeout := time.After(5 * time.Second)
				for range n - 1 {
					select {
					case t := <-seen:
						if t.After(last) {
							last = t
						}
					case <-timeout:
						b.Fatalf("invalidation %d not seen by every node within 5s", i)
					}
				}
				lat = append(lat, last.Sub(start))
			}
			var changes int64
			var gaps, repaired, unrep uint64
			for i, h := range hs {
				changes += h.changes.Load()
				st := nodes[i].c.Stats()
				gaps, repaired, unrep = gaps+st.GapsDetected, repaired+st.Repaired, unrep+st.Unrepairable
			}
			b.Logf("gaps %d repaired %d unrepairable %d", gaps, repaired, unrep)
			slices.Sort(lat)
			b.Logf("nodes=%d: %d MembersChanged calls in total; worst %v", n, changes, lat[len(lat)-1])
			pct := func(p float64) float64 {
				return float64(lat[min(len(lat)-1, int(float64(len(lat))*p))]) / float64(time.Millisecond)
			}
			b.ReportMetric(pct(0.50), "p50_ms")
			b.ReportMetric(pct(0.99), "p99_ms")
		})
	}
}

func BenchmarkWire(b *testing.B) {
	es := keys("user:", 32)
	for i := range es {
		es[i].Seq, es[i].SentAt = uint64(i+1), time.Now().UnixNano()
	}
	b.Run("encode32", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			encodeBatches("node-1", 1, 0, es)
		}
	})
	data := encodeBatches("node-1", 1, 0, es)[0].data
	b.Run("decode32", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			if _, err := decodeMessage(data); err != nil {
				b.Fatal(err)
			}
		}
	})
}
