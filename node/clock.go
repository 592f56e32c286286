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

// now returns a stamp greater than every stamp returned or observed before.
func (c *hlc) now() uint64 {
	var wall uint64
	if c.wall != nil {
		wall = c.wall()
	} else {
		wall = uint64(time.Now().UnixNano())
	}
	for {
		last := c.last.Load()
		next := wall
		if next <= last {
			next = last + 1
		}
		if c.last.CompareAndSwap(last, next) {
			return next
		}
	}
}

// observe moves the clock to at least v (a stamp from another node).
func (c *hlc) observe(v uint64) {
	for {
		last := c.last.Load()
		if v <= last || c.last.CompareAndSwap(last, v) {
			return
		}
	}
}
