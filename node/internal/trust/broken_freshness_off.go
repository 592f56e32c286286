//go:build nearcache_nofreshness

package trust

// brokenNoFreshness: a deliberately broken build whose stalls keep their
// verdict. internal/check must catch it.
const brokenNoFreshness = true
