package node

import (
	"sync/atomic"
	"time"
)

// hlc is a hybrid logical clock: wall-clock nanoseconds that never go
// backwards on this node and move past every stamp observed from others. It
// versions keys of [ClockVersions] groups, whose source has no versions.
type hlc struct {
	last atomic.Uint64
	wall func() uint64 // tests: the wall clock; nil = time.Now
}

// wallNow is the wall clock in unix nanos (the test clock when set).
func (c *hlc) wallNow() uint64 {
	if c.wall != nil {
		return c.wall()
	}
	return uint64(time.Now().UnixNano())
}

// now returns a stamp greater than every stamp returned or observed before,
// or MaxVersion once it got there: it saturates instead of wrapping to 0 (a
// stamp below every floor would make every fill look stale).
func (c *hlc) now() uint64 {
	wall := c.wallNow()
	for {
		last := c.last.Load()
		next := wall
		if next <= last {
			next = min(last+1, MaxVersion)
			if last >= MaxVersion {
				next = MaxVersion
			}
		}
		if c.last.CompareAndSwap(last, next) {
			return next
		}
	}
}

// observe moves the clock to at least v (a stamp from another node), never
// past MaxVersion.
func (c *hlc) observe(v uint64) {
	v = min(v, MaxVersion)
	for {
		last := c.last.Load()
		if v <= last || c.last.CompareAndSwap(last, v) {
			return
		}
	}
}
