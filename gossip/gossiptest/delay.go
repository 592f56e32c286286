package gossiptest

import (
	"container/heap"
	"time"
)

// delayed is one delivery waiting for its time.
type delayed struct {
	at  time.Time
	seq uint64 // ties keep send order
	fn  func()
}

// delayQueue is a min-heap of deliveries by (at, seq).
type delayQueue []delayed

func (q delayQueue) Len() int { return len(q) }
func (q delayQueue) Less(i, j int) bool {
	if !q[i].at.Equal(q[j].at) {
		return q[i].at.Before(q[j].at)
	}
	return q[i].seq < q[j].seq
}
func (q delayQueue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *delayQueue) Push(x any)   { *q = append(*q, x.(delayed)) }
func (q *delayQueue) Pop() any {
	old := *q
	x := old[len(old)-1]
	old[len(old)-1] = delayed{}
	*q = old[:len(old)-1]
	return x
}

// after runs fn once d has passed, unless t shuts down first. Deliveries due
// at the same instant run in the order they were scheduled; one timer per
// transport serves them all, and Shutdown stops it. A delivery discarded by
// Shutdown counts as a dropped packet.
func (t *Transport) after(d time.Duration, fn func()) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		t.net.stats.dropped.Add(1)
		return
	}
	t.seq++
	item := delayed{at: time.Now().Add(d), seq: t.seq, fn: fn}
	heap.Push(&t.delayed, item)
	if t.delayed[0].seq != item.seq {
		return // an earlier delivery already has the timer set
	}
	if t.timer == nil {
		t.timer = time.AfterFunc(d, t.fire)
		return
	}
	t.timer.Reset(d)
}

// fire runs every delivery that is due, in order, and re-arms the timer for
// the next one.
func (t *Transport) fire() {
	t.fireMu.Lock()
	defer t.fireMu.Unlock()
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return
	}
	now := time.Now()
	var due []func()
	for len(t.delayed) > 0 && !t.delayed[0].at.After(now) {
		due = append(due, heap.Pop(&t.delayed).(delayed).fn)
	}
	if len(t.delayed) > 0 {
		t.timer.Reset(t.delayed[0].at.Sub(now))
	}
	t.mu.Unlock()
	for _, fn := range due {
		fn()
	}
}
