package metrics

import (
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nearcache/nearcache/node"
	"github.com/prometheus/client_golang/prometheus"
)

// ErrNilRegisterer is reported by [Metrics.Err] for a Metrics built with a
// nil Registerer.
var ErrNilRegisterer = errors.New("metrics: Registerer is nil")

// Metrics exports one node's measurements to a Prometheus registerer. It
// implements node.Observer. All methods are safe for concurrent use.
//
// A Metrics serves one node at a time: Attach, then Detach, then possibly
// Attach again (a fresh set of histograms each time).
type Metrics struct {
	reg   prometheus.Registerer // nil when cfgErr is ErrNilRegisterer
	cfg   Config                // with defaults
	descs *descs
	build BuildInfo // read once by the constructor
	// cfgErr is set once by the constructor; a Metrics with one does nothing.
	cfgErr error

	// cur is the live attachment, nil when detached. It is read without a
	// lock on the observe paths and written under mu.
	cur atomic.Pointer[attachment]

	// mu serialises Attach and Detach and guards the fields below.
	mu        sync.Mutex
	attachErr error // outcome of the last Attach
}

var _ node.Observer = (*Metrics)(nil)

// New returns a Metrics with the default [Config] that registers on reg when
// a node attaches. A nil reg is not a panic: [Metrics.Err] reports
// [ErrNilRegisterer] and the Metrics does nothing.
func New(reg prometheus.Registerer) *Metrics {
	return NewWithConfig(reg, Config{})
}

// NewWithConfig is [New] with a Config. An invalid cfg is reported by
// [Metrics.Err]; the Metrics then does nothing. cfg is copied.
func NewWithConfig(reg prometheus.Registerer, cfg Config) *Metrics {
	m := &Metrics{reg: reg}
	switch err := cfg.validate(); {
	case reg == nil:
		m.cfgErr = ErrNilRegisterer
	case err != nil:
		m.cfgErr = err
	default:
		m.cfg = cfg.withDefaults()
		m.descs = newDescs(m.cfg.Namespace)
		m.build = ReadBuildInfo()
	}
	return m
}

// Attach registers this Metrics' collector on the registerer; stats is
// called at every scrape until Detach. It implements node.Observer.Attach.
// The same collector exports nearcache_build_info, so a node's figures and
// the version that produced them appear and disappear together.
//
// A registration error (for example a [prometheus.AlreadyRegisteredError]
// when another Metrics already exports the same names on that registry) is
// kept and returned by [Metrics.Err]; nothing is then exported. Attach while
// already attached is an error too and leaves the first attachment in place.
func (m *Metrics) Attach(stats func() node.Stats) {
	if m.cfgErr != nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	switch {
	case m.cur.Load() != nil:
		m.attachErr = errors.New("metrics: Attach called again without Detach")
		return
	case stats == nil:
		m.attachErr = errors.New("metrics: Attach called with a nil stats function")
		return
	}
	a := newAttachment(m.descs, m.cfg, m.build, stats)
	if err := m.reg.Register(a); err != nil {
		m.attachErr = err // errors.As(err, &prometheus.AlreadyRegisteredError{}) works
		return
	}
	m.attachErr = nil
	m.cur.Store(a)
}

// Detach unregisters what Attach registered; after it returns the stats
// function is not called again, even by a scrape already in progress. It
// implements node.Observer.Detach and is a no-op when not attached.
func (m *Metrics) Detach() {
	m.mu.Lock()
	defer m.mu.Unlock()
	a := m.cur.Load()
	if a == nil {
		return
	}
	m.cur.Store(nil)
	m.reg.Unregister(a)
	// A Gather that listed the collector before Unregister may still call
	// Collect; detach makes that a no-op and waits out a running stats call.
	a.detach()
}

// ObserveLoad records one loader call of group taking d into
// nearcache_load_duration_seconds. Outcomes are counted from the node's
// snapshot (nearcache_loads_total), so err is not used here. It does
// nothing while detached.
func (m *Metrics) ObserveLoad(group string, d time.Duration, err error) {
	if a := m.cur.Load(); a != nil {
		a.load.WithLabelValues(validLabel(group)).Observe(d.Seconds())
	}
}

// ObservePropagation records into nearcache_propagation_delay_seconds that a
// remote invalidation of group was applied here d after its origin published
// it. A negative d (the origin's clock is ahead of ours) is recorded as 0 so
// the histogram's sum stays meaningful. It does nothing while detached.
func (m *Metrics) ObservePropagation(group string, d time.Duration) {
	if a := m.cur.Load(); a != nil {
		a.prop.WithLabelValues(validLabel(group)).Observe(max(d, 0).Seconds())
	}
}

// Err reports why this Metrics exports nothing: a nil Registerer
// ([ErrNilRegisterer]), an invalid Config, or the error of the last Attach
// (registration failure, double Attach, nil stats function). It is nil once
// an Attach has succeeded.
func (m *Metrics) Err() error {
	if m.cfgErr != nil {
		return m.cfgErr
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.attachErr
}

// validLabel makes s a valid label value: client_golang panics on invalid
// UTF-8, and a group name must not be able to crash a load or a scrape.
// Invalid bytes become U+FFFD; a valid s is returned as is, without
// allocating.
func validLabel(s string) string {
	return strings.ToValidUTF8(s, "\uFFFD")
}
