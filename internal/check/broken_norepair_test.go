//go:build nearcache_norepair

package check

func init() { brokenTag = "nearcache_norepair" }
