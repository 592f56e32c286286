//go:build nearcache_nologfresh

package check

func init() { brokenTag = "nearcache_nologfresh" }
