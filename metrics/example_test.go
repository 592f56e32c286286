package metrics_test

import (
	"fmt"
	"time"

	"github.com/nearcache/nearcache/metrics"
	"github.com/nearcache/nearcache/node"
	"github.com/prometheus/client_golang/prometheus"
)

// A node calls Attach on Start and Detach on Close; here a fixed snapshot
// stands in for the node.
func ExampleNew() {
	reg := prometheus.NewRegistry() // never the global one
	m := metrics.New(reg)           // pass as node.Config.Observer

	m.Attach(func() node.Stats {
		return node.Stats{Trusted: true, Members: 3, Groups: []node.GroupStats{{Name: "users", Hits: 42}}}
	})
	defer m.Detach()
	if err := m.Err(); err != nil {
		fmt.Println("metrics:", err)
		return
	}
	m.ObserveLoad("users", 12*time.Millisecond, nil)

	mfs, _ := reg.Gather()
	for _, mf := range mfs {
		switch mf.GetName() {
		case "nearcache_members":
			fmt.Println(mf.GetName(), mf.GetMetric()[0].GetGauge().GetValue())
		case "nearcache_load_duration_seconds":
			fmt.Println(mf.GetName(), "count", mf.GetMetric()[0].GetHistogram().GetSampleCount())
		}
	}
	// Output:
	// nearcache_load_duration_seconds count 1
	// nearcache_members 3
}

// Several nodes in one process sharing a registry: add a label per node.
func ExampleNew_sharedRegistry() {
	reg := prometheus.NewRegistry()
	for _, name := range []string{"a", "b"} {
		m := metrics.New(prometheus.WrapRegistererWith(prometheus.Labels{"node": name}, reg))
		m.Attach(func() node.Stats { return node.Stats{Name: name, Members: 2} })
		defer m.Detach()
		fmt.Println(name, m.Err())
	}
	// Output:
	// a <nil>
	// b <nil>
}
