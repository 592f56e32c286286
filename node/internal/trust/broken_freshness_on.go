//go:build !nearcache_nofreshness

package trust

// brokenNoFreshness is false in every real build; the nearcache_nofreshness
// tag builds the broken variant that internal/check must catch (G5).
const brokenNoFreshness = false
