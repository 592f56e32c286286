//go:build !nearcache_nofreshness

package node

// brokenNoFreshness is false in every real build (see broken_freshness_off.go).
const brokenNoFreshness = false
