//go:build !nearcache_nofloor

package local

// brokenNoFloor is false in every real build (see broken_floor_off.go).
const brokenNoFloor = false
