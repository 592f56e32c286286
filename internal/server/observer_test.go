package server

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/nearcache/nearcache/node"
)

type countingObserver struct {
	attached, props, loads atomic.Int64
}

func (o *countingObserver) Attach(func() node.Stats)                 { o.attached.Add(1) }
func (o *countingObserver) Detach()                                  {}
func (o *countingObserver) ObserveLoad(string, time.Duration, error) { o.loads.Add(1) }
func (o *countingObserver) ObservePropagation(string, time.Duration) { o.props.Add(1) }

func TestObserver(t *testing.T) {
	tests := []struct {
		name      string
		samples   int // 1ms, 2ms, ... samples ms
		wantCount uint64
		wantWin   int
		wantLast  float64
		wantP50   float64
		wantP99   float64
		wantMax   float64
	}{
		{name: "one", samples: 1, wantCount: 1, wantWin: 1, wantLast: 1, wantP50: 1, wantP99: 1, wantMax: 1},
		{name: "hundred", samples: 100, wantCount: 100, wantWin: 100, wantLast: 100, wantP50: 50, wantP99: 99, wantMax: 100},
		// Past the window only the latest 256 count: 45..300.
		{name: "wraps", samples: 300, wantCount: 300, wantWin: 256, wantLast: 300, wantP50: 172, wantP99: 297, wantMax: 300},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			next := &countingObserver{}
			o := NewObserver(next)
			if _, ok := o.Propagation("g"); ok {
				t.Fatal("Propagation before any sample reported ok")
			}
			for i := 1; i <= tt.samples; i++ {
				o.ObservePropagation("g", time.Duration(i)*time.Millisecond)
			}
			o.ObservePropagation("other", time.Hour) // groups are kept apart
			o.ObserveLoad("g", time.Millisecond, nil)
			o.Attach(func() node.Stats { return node.Stats{} })
			p, ok := o.Propagation("g")
			want := Propagation{Count: tt.wantCount, Window: tt.wantWin, LastMS: tt.wantLast, P50MS: tt.wantP50, P99MS: tt.wantP99, MaxMS: tt.wantMax}
			if !ok || p != want {
				t.Errorf("Propagation = %+v, %v, want %+v", p, ok, want)
			}
			// Everything reaches the wrapped observer (the Prometheus metrics).
			if next.props.Load() != int64(tt.samples+1) || next.loads.Load() != 1 || next.attached.Load() != 1 {
				t.Errorf("forwarded props %d loads %d attach %d, want %d, 1, 1",
					next.props.Load(), next.loads.Load(), next.attached.Load(), tt.samples+1)
			}
		})
	}
}

func BenchmarkObservePropagation(b *testing.B) {
	o := NewObserver(&countingObserver{})
	b.ReportAllocs()
	for b.Loop() {
		o.ObservePropagation("items", time.Millisecond)
	}
}
