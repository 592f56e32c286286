package node

import (
	"testing"

	"github.com/nearcache/nearcache/gossip"
)

func TestTrustVerdict(t *testing.T) {
	healthy := gossip.Health{Synced: true, AlivePeers: 4, FreshPeers: 4, ExpectedPeers: 4}
	tests := []struct {
		name string
		mut  func(*gossip.Health)
		want bool
	}{
		{"healthy", func(*gossip.Health) {}, true},
		{"solo by design", func(h *gossip.Health) { *h = gossip.Health{Solo: true} }, true},
		{"not caught up", func(h *gossip.Health) { h.Synced = false }, false},
		{"unrepaired gap", func(h *gossip.Health) { h.PendingGaps = 1 }, false},
		{"alone after peers", func(h *gossip.Health) { h.AlivePeers, h.FreshPeers = 0, 0 }, false},
		{"one peer unheard of four", func(h *gossip.Health) { h.FreshPeers = 3 }, true},
		{"cut off: peers alive but unheard", func(h *gossip.Health) { h.FreshPeers = 0 }, false},
		{"minority after a split", func(h *gossip.Health) { h.AlivePeers, h.FreshPeers = 1, 1 }, false},
		{"exact half is not a majority", func(h *gossip.Health) { h.AlivePeers, h.FreshPeers, h.ExpectedPeers = 1, 1, 3 }, false},
		{"majority of five", func(h *gossip.Health) { h.AlivePeers, h.FreshPeers = 2, 2 }, true},
		{"two nodes, the other crashed", func(h *gossip.Health) { h.AlivePeers, h.FreshPeers, h.ExpectedPeers = 0, 0, 1 }, false},
		{"every peer left gracefully", func(h *gossip.Health) { h.AlivePeers, h.FreshPeers, h.ExpectedPeers = 0, 0, 0 }, true},
		{"every peer left, not caught up", func(h *gossip.Health) { *h = gossip.Health{} }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := healthy
			tt.mut(&h)
			if got, why := trustVerdict(h); got != tt.want {
				t.Errorf("trustVerdict(%+v) = %v (%s), want %v", h, got, why, tt.want)
			}
		})
	}
}
