//go:build !nearcache_norepair

package gossip

// brokenNoRepair is false in every real build (see broken_antientropy_off.go).
const brokenNoRepair = false
