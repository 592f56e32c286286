package node

import (
	"testing"

	"go.uber.org/goleak"
)

// No goroutine may outlive the tests: every Node is closed and Close waits
// for everything it started.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
