package bench

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
)

// progress draws a one-line progress bar on w while runs go, when the whole
// plan is longer than a few seconds.
type progress struct {
	w     io.Writer
	total time.Duration
	runs  int

	// mu guards the fields below.
	mu      sync.Mutex
	done    time.Duration // planned time of finished runs
	run     int
	label   string
	started time.Time
	planned time.Duration
	ticker  *time.Ticker
	quit    chan struct{}
	exited  chan struct{}
}

func newProgress(w io.Writer, total time.Duration, runs int) *progress {
	p := &progress{w: w, total: total, runs: runs}
	if w == nil || total < 3*time.Second {
		p.w = nil
		return p
	}
	p.ticker = time.NewTicker(250 * time.Millisecond)
	p.quit, p.exited = make(chan struct{}), make(chan struct{})
	go func() {
		defer close(p.exited)
		for {
			select {
			case <-p.quit:
				return
			case <-p.ticker.C:
				p.draw()
			}
		}
	}()
	return p
}

func (p *progress) begin(label string, planned time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.run++
	p.label, p.started, p.planned = label, time.Now(), planned
}

func (p *progress) end() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.done += p.planned
	p.planned = 0
}

func (p *progress) draw() {
	p.mu.Lock()
	defer p.mu.Unlock()
	cur := p.done + min(time.Since(p.started), p.planned)
	frac := min(float64(cur)/float64(p.total), 1)
	const width = 30
	n := int(frac * width)
	fmt.Fprintf(p.w, "\r[%s%s] %3.0f%% run %d/%d %-36s", strings.Repeat("#", n), strings.Repeat(".", width-n), frac*100, p.run, p.runs, p.label)
}

func (p *progress) stop() {
	if p.w == nil {
		return
	}
	p.ticker.Stop()
	close(p.quit)
	<-p.exited
	fmt.Fprintf(p.w, "\r%s\r", strings.Repeat(" ", 90))
}
