//go:build nearcache_norepair

package gossip

// brokenNoRepair switches a guard off: a deliberately broken build for internal/check.
const brokenNoRepair = true

// brokenMerge drops what a push/pull brings: no log entries, no vector.
func brokenMerge(m *stateMsg) { m.Logs, m.Vector = nil, nil }
