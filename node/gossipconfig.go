package node

import (
	"time"

	"github.com/nearcache/nearcache/gossip"
)

// gossipConfig is the gossip layer's configuration for this node: the one
// place node.Config's cluster fields meet gossip.Config, so Start and
// validate cannot drift apart. c has its defaults applied.
func (c Config) gossipConfig(fillPort int, h gossip.Handler) gossip.Config {
	return gossip.Config{
		Name:              c.Name,
		Cluster:           c.Cluster,
		BindAddr:          c.BindAddr,
		BindPort:          c.BindPort,
		AdvertiseAddr:     c.AdvertiseAddr,
		AdvertisePort:     c.AdvertisePort,
		Join:              c.Join,
		Keyring:           subkeys(c.keyring(), infoGossip),
		Meta:              encodeMeta(fillPort, c.Meta),
		Profile:           c.Profile,
		PushPullInterval:  c.PushPullInterval,
		HeartbeatInterval: min(250*time.Millisecond, c.MaxStaleness/8),
		Transport:         c.Transport,
		Handler:           h,
		Logger:            c.Logger.With("component", "gossip"),
	}
}
