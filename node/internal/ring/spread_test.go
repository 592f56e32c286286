package ring

import (
	"fmt"
	"hash/crc32"
	"strconv"
	"strings"
	"testing"

	"github.com/golang/groupcache/consistenthash"
)

// spread returns the max/mean and min/mean ratios of keys owned per member.
func spread(owner func(string) string, members, ks []string) (maxRatio, minRatio float64) {
	count := make(map[string]int, len(members))
	for _, k := range ks {
		count[owner(k)]++
	}
	mean := float64(len(ks)) / float64(len(members))
	lo, hi := len(ks), 0
	for _, m := range members {
		lo = min(lo, count[m])
		hi = max(hi, count[m])
	}
	return float64(hi) / mean, float64(lo) / mean
}

// TestSpread logs the load spread of the ring (and, for comparison, of
// groupcache's default crc32) for 3, 10 and 30 members and 50..400 replicas
// over 100k keys, and bounds it for DefaultReplicas. Run with -v to see the
// table. Two naming styles: node names and host:port addresses, the latter
// being where crc32's linearity shows.
func TestSpread(t *testing.T) {
	if testing.Short() {
		t.Skip("spread table is slow-ish")
	}
	ks := keys(100000)
	styles := []struct {
		name  string
		names func(int) []string
	}{
		{"node-i", nodeNames},
		{"host:port", func(n int) []string {
			out := make([]string, n)
			for i := range out {
				out[i] = "10.0.0." + strconv.Itoa(i+1) + ":7946"
			}
			return out
		}},
	}
	var b strings.Builder
	fmt.Fprintf(&b, "\n%-10s %-7s %8s %9s   %14s %14s\n", "names", "members", "replicas", "", "ring max/min", "crc32 max/min")
	for _, st := range styles {
		for _, n := range []int{3, 10, 30} {
			members := st.names(n)
			for _, reps := range []int{50, 100, 200, 400} {
				r := New(members, reps)
				rmax, rmin := spread(r.Owner, members, ks)
				c := consistenthash.New(reps, crc32.ChecksumIEEE)
				c.Add(members...)
				cmax, cmin := spread(c.Get, members, ks)
				def := ""
				if reps == DefaultReplicas {
					def = "(default)"
				}
				fmt.Fprintf(&b, "%-10s %7d %8d %9s   %6.3f/%6.3f  %6.3f/%6.3f\n", st.name, n, reps, def, rmax, rmin, cmax, cmin)
			}
			if n == 10 {
				rmax, rmin := spread(New(members, 0).Owner, members, ks)
				if rmax > 1.25 || rmin < 0.75 {
					t.Errorf("%s, 10 members, default replicas: max/mean %.3f (want <= 1.25), min/mean %.3f (want >= 0.75)", st.name, rmax, rmin)
				}
			}
		}
	}
	t.Log(b.String())
}

func BenchmarkOwner(b *testing.B) {
	for _, n := range []int{3, 10, 30} {
		b.Run("members="+strconv.Itoa(n), func(b *testing.B) {
			r := New(nodeNames(n), 0)
			ks := keys(1024)
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				_ = r.Owner(ks[i%len(ks)])
			}
		})
	}
}

// BenchmarkNew is the cost of a membership change.
func BenchmarkNew(b *testing.B) {
	for _, n := range []int{3, 10, 30} {
		b.Run("members="+strconv.Itoa(n), func(b *testing.B) {
			members := nodeNames(n)
			b.ReportAllocs()
			for b.Loop() {
				_ = New(members, 0)
			}
		})
	}
}

// BenchmarkConsistenthashGet is groupcache's lookup, for comparison.
func BenchmarkConsistenthashGet(b *testing.B) {
	c := consistenthash.New(DefaultReplicas, Hash)
	c.Add(nodeNames(10)...)
	ks := keys(1024)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		_ = c.Get(ks[i%len(ks)])
	}
}
