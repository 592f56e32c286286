//go:build nearcache_nologfresh

package node

// brokenNoLogFresh switches a guard off: a deliberately broken build for
// internal/check (LogFed groups serve cached values whatever the feed's
// progress: G9 is broken).
const brokenNoLogFresh = true
