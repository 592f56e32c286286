//go:build nearcache_nofreshness

package check

func init() { brokenTag = "nearcache_nofreshness" }
