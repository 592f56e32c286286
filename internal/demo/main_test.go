package demo

import (
	"testing"

	"go.uber.org/goleak"
)

// No goroutine may outlive Run: nodes closed, workers joined.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
