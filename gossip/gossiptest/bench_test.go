package gossiptest

import (
	"testing"
	"time"
)

func BenchmarkWriteTo(b *testing.B) {
	tests := []struct {
		name  string
		setup func(n *Network)
	}{
		{name: "deliver", setup: func(*Network) {}},
		{name: "drop=1", setup: func(n *Network) { n.SetDrop(1) }},
		{name: "drop=0.2,dup=0.1", setup: func(n *Network) { n.SetDrop(0.2); n.SetDuplicate(0.1) }},
		{name: "delay=1ms", setup: func(n *Network) { n.SetDelay(time.Millisecond, time.Millisecond) }},
	}
	payload := make([]byte, 1400)
	for _, tt := range tests {
		b.Run(tt.name, func(b *testing.B) {
			n := New(1)
			src, err := n.Transport(addrA)
			if err != nil {
				b.Fatal(err)
			}
			dst, err := n.Transport(addrB)
			if err != nil {
				b.Fatal(err)
			}
			defer src.Shutdown()
			defer dst.Shutdown()
			tt.setup(n)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := src.WriteTo(payload, addrB); err != nil {
					b.Fatal(err)
				}
				drainOne(dst)
			}
		})
	}
}

// drainOne takes at most one packet without blocking, so the queue never
// fills and the deliver path is measured.
func drainOne(t *Transport) {
	select {
	case <-t.PacketCh():
	default:
	}
}
