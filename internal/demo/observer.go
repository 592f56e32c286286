package demo

import (
	"sync/atomic"
	"time"

	"github.com/nearcache/nearcache/internal/hist"
	"github.com/nearcache/nearcache/node"
)

// observer is the demo's [node.Observer]: it counts loads and keeps the
// propagation delays of the invalidations its node applied in a histogram.
// Its methods never block.
type observer struct {
	loads, loadErrors atomic.Uint64
	propagation       hist.Concurrent
}

var _ node.Observer = (*observer)(nil)

// Attach is a no-op: the demo reads node.Stats directly.
func (o *observer) Attach(func() node.Stats) {}

// Detach is a no-op: nothing was registered.
func (o *observer) Detach() {}

// ObserveLoad counts one loader call.
func (o *observer) ObserveLoad(_ string, _ time.Duration, err error) {
	o.loads.Add(1)
	if err != nil {
		o.loadErrors.Add(1)
	}
}

// ObservePropagation records how long a remote invalidation took to be
// applied here after its origin published it.
func (o *observer) ObservePropagation(_ string, d time.Duration) {
	o.propagation.Record(d)
}
