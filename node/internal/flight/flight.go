package flight

import (
	"context"
	"sync"
)

// Group is a table of calls in progress (or lingering), by key.
type Group[K comparable, R any] struct {
	// mu guards m.
	mu sync.Mutex
	m  map[K]*Call[R]
}

// Call is one unit of work shared by every caller of its key.
type Call[R any] struct {
	done chan struct{} // closed once res is set
	res  R
	// next and nextWork (guarded by the Group's mu) are the call queued
	// behind this one by JoinFresh: it starts when this one finishes.
	next     *Call[R]
	nextWork Work[R]
}

// Work is what a call runs: Fn computes the result (it must not panic: it
// runs on its own goroutine, where a panic ends the process); Linger, when not nil,
// runs after the result was handed to the waiters and before the call leaves
// the table (while it runs, Join may hand the finished call to new callers).
type Work[R any] struct {
	Fn     func() R
	Linger func(R)
}

// Join returns the call for key: the one in progress, or a finished one
// still lingering for which reuse(result) is true. When there is none it
// asks start whether to begin one (it may refuse, when the owner is
// closing): if so, it runs w in a new goroutine and returns that call with
// started true. c is nil when start refused.
func (g *Group[K, R]) Join(key K, reuse func(R) bool, start func() (Work[R], bool)) (c *Call[R], started bool) {
	g.mu.Lock()
	if c := g.m[key]; c != nil && (!c.Finished() || reuse(c.res)) {
		g.mu.Unlock()
		return c, false
	}
	w, ok := start()
	if !ok {
		g.mu.Unlock()
		return nil, false
	}
	c = g.startLocked(key, w)
	g.mu.Unlock()
	return c, true
}

// JoinFresh is Join for a caller that must not be handed work that began
// before it arrived (a read that has to see every write committed before it
// started). With no call in progress it starts one, as Join does; a
// lingering, finished call is not reused. With one in progress it returns
// the call queued behind it, which starts when the current one finishes:
// every caller arriving meanwhile shares that one, so a key has at most one
// call running and one waiting, and each caller waits at most two calls.
// start is asked, as in Join, when a call is started or queued; started
// reports that this caller's start was used.
func (g *Group[K, R]) JoinFresh(key K, start func() (Work[R], bool)) (c *Call[R], started bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	cur := g.m[key]
	if cur != nil && !cur.Finished() && cur.next != nil {
		return cur.next, false
	}
	w, ok := start()
	if !ok {
		return nil, false
	}
	if cur == nil || cur.Finished() {
		return g.startLocked(key, w), true
	}
	cur.next, cur.nextWork = &Call[R]{done: make(chan struct{})}, w
	return cur.next, true
}

// Start begins a call for key unless one is in progress (a lingering,
// finished one is replaced); start is asked as in Join. It reports whether
// it started one. Nobody waits for such a call (a background refresh).
func (g *Group[K, R]) Start(key K, start func() (Work[R], bool)) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if c := g.m[key]; c != nil && !c.Finished() {
		return false
	}
	w, ok := start()
	if !ok {
		return false
	}
	g.startLocked(key, w)
	return true
}

func (g *Group[K, R]) startLocked(key K, w Work[R]) *Call[R] {
	if g.m == nil {
		g.m = make(map[K]*Call[R])
	}
	c := &Call[R]{done: make(chan struct{})}
	g.m[key] = c
	go g.run(key, c, w)
	return c
}

func (g *Group[K, R]) run(key K, c *Call[R], w Work[R]) {
	defer g.forget(key, c)
	res := w.Fn()
	g.mu.Lock()
	// Under mu: JoinFresh sees either a call in progress, whose queued call
	// will start, or a finished one.
	c.res = res
	close(c.done)
	if n := c.next; n != nil {
		g.m[key] = n
		go g.run(key, n, c.nextWork)
		c.next, c.nextWork = nil, Work[R]{}
	}
	g.mu.Unlock()
	if w.Linger != nil {
		w.Linger(c.res)
	}
}

// forget removes c from the table unless a newer call replaced it.
func (g *Group[K, R]) forget(key K, c *Call[R]) {
	g.mu.Lock()
	if g.m[key] == c {
		delete(g.m, key)
	}
	g.mu.Unlock()
}

// Len returns the number of calls in the table (in progress or lingering).
func (g *Group[K, R]) Len() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.m)
}

// Wait returns c's result once it is set, or ctx's error if ctx ends first.
func (c *Call[R]) Wait(ctx context.Context) (R, error) {
	select {
	case <-c.done:
		return c.res, nil
	case <-ctx.Done():
		var zero R
		return zero, ctx.Err()
	}
}

// Finished reports whether c's result is set.
func (c *Call[R]) Finished() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}
