package peer

import (
	"testing"

	"go.uber.org/goleak"
)

// No goroutine may outlive the tests: Server.Close waits for everything it
// started, and Client.Close closes every connection.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
