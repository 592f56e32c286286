//go:build nearcache_nofreshness

package node

// brokenNoFreshness switches a guard off: a deliberately broken build for internal/check.
const brokenNoFreshness = true
