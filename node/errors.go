package node

import (
	"errors"
	"fmt"
	"strings"
)

var (
	// ErrClosed is returned by every call on a closed Node or its groups.
	ErrClosed = errors.New("node: closed")
	// ErrDegraded is returned by reads when the node does not trust its cache
	// (it has not heard the cluster within MaxStaleness, G5) and
	// Config.Degraded is DegradedFail.
	ErrDegraded = errors.New("node: degraded: cluster not heard within MaxStaleness")
	// ErrOverloaded is returned (wrapped) when a load waited for a free slot
	// under Config.MaxConcurrentLoads until its LoadTimeout or ctx ended.
	ErrOverloaded = errors.New("node: overloaded: too many concurrent loads")
	// ErrNotJoined is returned (wrapped) by a write with [AckAll] on a node
	// that has not caught up with any peer since it started, or since a
	// failure left it alone: it cannot know which members may serve the key
	// (a restarted node must not report a write as invalidated before it has
	// rejoined). The invalidation was applied here and sent to whoever
	// listens.
	ErrNotJoined = errors.New("node: not joined to the cluster yet: the members to wait for are unknown")
)

// StaleError is returned when the source kept answering with a version below
// the key's version floor: an invalidation said a newer version was committed,
// but the source (a lagging replica, say) does not show it yet. The value is
// not returned: serving it would break G1.
type StaleError struct {
	Group, Key string
	Version    uint64 // what the source returned
	Floor      uint64 // the newest version known to be committed
}

func (e *StaleError) Error() string {
	return fmt.Sprintf("node: %s/%q: source returned version %d below floor %d", e.Group, e.Key, e.Version, e.Floor)
}

// LoadError wraps an error of a group's loader.
type LoadError struct {
	Group, Key string
	Err        error
}

func (e *LoadError) Error() string {
	return fmt.Sprintf("node: load %s/%q: %v", e.Group, e.Key, e.Err)
}

func (e *LoadError) Unwrap() error { return e.Err }

// AckError is returned by an invalidation with [AckAll] when some live members
// did not acknowledge it before ctx ended. The invalidation was applied on this
// node and sent to everyone; the missing members may still apply it.
type AckError struct {
	Missing []string // member names, sorted
	Err     error    // why waiting stopped (ctx's error)
}

func (e *AckError) Error() string {
	return fmt.Sprintf("node: invalidation not acknowledged by %s: %v", strings.Join(e.Missing, ", "), e.Err)
}

func (e *AckError) Unwrap() error { return e.Err }
