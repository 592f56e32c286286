//go:build nearcache_nofloor

package check

func init() { brokenTag = "nearcache_nofloor" }
