//go:build nearcache_nostalefill

package node

// brokenNoStaleFill switches a guard off: a deliberately broken build for internal/check.
const brokenNoStaleFill = true
