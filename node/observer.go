package node

import "time"

// Observer receives what a [Node] measures, for metrics. Package metrics
// implements it on Prometheus; node itself never imports a metrics library.
//
// All methods must be safe for concurrent use and must not block: they are
// called on load and invalidation paths (never on the cache-hit path, whose
// counters are read through the function given to Attach).
type Observer interface {
	// Attach is called once by Start, before any other method. stats returns a
	// fresh snapshot of the node's counters; it is cheap, safe for concurrent
	// use, and may be called at any time until Detach (typically at scrape).
	Attach(stats func() Stats)
	// Detach is called once by Close, last. The observer must stop calling the
	// stats function and should unregister what it registered.
	Detach()
	// ObserveLoad reports one call of a group's loader and its outcome.
	ObserveLoad(group string, d time.Duration, err error)
	// ObservePropagation reports a remote invalidation applied here, d after its
	// origin published it (origin's wall clock; meaningful on synced clocks).
	ObservePropagation(group string, d time.Duration)
}

// nopObserver is used when Config.Observer is nil.
type nopObserver struct{}

func (nopObserver) Attach(func() Stats)                      {}
func (nopObserver) Detach()                                  {}
func (nopObserver) ObserveLoad(string, time.Duration, error) {}
func (nopObserver) ObservePropagation(string, time.Duration) {}
