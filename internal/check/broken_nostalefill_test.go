//go:build nearcache_nostalefill

package check

func init() { brokenTag = "nearcache_nostalefill" }
