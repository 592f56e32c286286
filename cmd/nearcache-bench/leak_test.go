package main

import (
	"testing"

	"go.uber.org/goleak"
)

// No goroutine of a test (strategies, child processes' waiters) outlives it.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
