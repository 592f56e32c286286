//go:build !nearcache_nostalefill

package node

// brokenNoStaleFill is false in every real build (see broken_stalefill_off.go).
const brokenNoStaleFill = false
