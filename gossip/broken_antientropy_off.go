//go:build nearcache_norepair

package gossip

// brokenNoRepair switches a guard off: a deliberately broken build for internal/check.
const brokenNoRepair = true
