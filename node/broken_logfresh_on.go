//go:build !nearcache_nologfresh

package node

// brokenNoLogFresh is false in every real build (see broken_logfresh_off.go).
const brokenNoLogFresh = false
