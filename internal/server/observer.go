package server

import (
	"slices"
	"sync"
	"time"

	"github.com/nearcache/nearcache/node"
)

// propagationWindow is how many recent propagation delays per group the
// status page summarises.
const propagationWindow = 256

// Observer is a node.Observer that keeps the recent propagation delays for
// the status page and forwards everything to another observer (the Prometheus
// metrics). Methods it does not override are the wrapped observer's.
type Observer struct {
	node.Observer // forwarded to; never nil

	// mu guards prop.
	mu   sync.Mutex
	prop map[string]*ring
}

// NewObserver returns an Observer forwarding to next, which is required
// (typically a *metrics.Metrics). Embedding next, rather than listing its
// methods, keeps this wrapper whole when node.Observer grows.
func NewObserver(next node.Observer) *Observer {
	if next == nil {
		panic("server: NewObserver(nil)")
	}
	return &Observer{Observer: next, prop: make(map[string]*ring)}
}

// ObservePropagation records d for group and forwards it.
func (o *Observer) ObservePropagation(group string, d time.Duration) {
	o.mu.Lock()
	r := o.prop[group]
	if r == nil {
		r = &ring{}
		o.prop[group] = r
	}
	r.add(d)
	o.mu.Unlock()
	o.Observer.ObservePropagation(group, d)
}

// Propagation summarises the delays of group's recent remote invalidations.
type Propagation struct {
	Count  uint64  `json:"count"`   // all observed since start
	Window int     `json:"window"`  // how many the figures below cover
	LastMS float64 `json:"last_ms"` // the most recent
	P50MS  float64 `json:"p50_ms"`
	P99MS  float64 `json:"p99_ms"`
	MaxMS  float64 `json:"max_ms"`
}

// Propagation returns the summary for group; ok is false before any sample.
func (o *Observer) Propagation(group string) (p Propagation, ok bool) {
	o.mu.Lock()
	r := o.prop[group]
	if r == nil {
		o.mu.Unlock()
		return p, false
	}
	s := slices.Clone(r.samples())
	p.Count, p.LastMS = r.count, ms(r.last)
	o.mu.Unlock()
	slices.Sort(s)
	p.Window = len(s)
	p.P50MS = ms(s[(len(s)-1)*50/100])
	p.P99MS = ms(s[(len(s)-1)*99/100])
	p.MaxMS = ms(s[len(s)-1])
	return p, true
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// ring keeps the last propagationWindow samples.
type ring struct {
	buf   [propagationWindow]time.Duration
	count uint64
	last  time.Duration
}

func (r *ring) add(d time.Duration) {
	r.buf[r.count%propagationWindow] = d
	r.count++
	r.last = d
}

func (r *ring) samples() []time.Duration {
	return r.buf[:min(r.count, propagationWindow)]
}
