//go:build nearcache_nofloor

package local

// brokenNoFloor switches a guard off: a deliberately broken build for internal/check.
const brokenNoFloor = true
