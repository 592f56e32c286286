package metrics

import (
	"fmt"
	"testing"
	"time"

	"github.com/nearcache/nearcache/node"
	"github.com/prometheus/client_golang/prometheus"
)

func BenchmarkObserveLoad(b *testing.B) {
	m := New(prometheus.NewRegistry())
	m.Attach(fixedStats)
	defer m.Detach()
	b.ReportAllocs()
	for b.Loop() {
		m.ObserveLoad("users", 3*time.Millisecond, nil)
	}
}

func BenchmarkObserveLoadParallel(b *testing.B) {
	m := New(prometheus.NewRegistry())
	m.Attach(fixedStats)
	defer m.Detach()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			m.ObserveLoad("users", 3*time.Millisecond, nil)
		}
	})
}

func BenchmarkObserveDetached(b *testing.B) {
	m := New(prometheus.NewRegistry())
	b.ReportAllocs()
	for b.Loop() {
		m.ObserveLoad("users", 3*time.Millisecond, nil)
	}
}

// BenchmarkGather is one scrape of a node with n groups.
func BenchmarkGather(b *testing.B) {
	for _, n := range []int{1, 10, 100} {
		b.Run(fmt.Sprintf("groups=%d", n), func(b *testing.B) {
			s := node.Stats{Trusted: true, Members: 5}
			for i := range n {
				s.Groups = append(s.Groups, node.GroupStats{Name: fmt.Sprintf("g%03d", i), Hits: uint64(i)})
			}
			reg := prometheus.NewRegistry()
			m := New(reg)
			m.Attach(func() node.Stats { return s })
			defer m.Detach()
			for _, g := range s.Groups {
				m.ObserveLoad(g.Name, time.Millisecond, nil)
				m.ObservePropagation(g.Name, time.Millisecond)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := reg.Gather(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
