package main

import (
	"testing"

	"go.uber.org/goleak"
)

// No goroutine of a test (process waiters, HTTP connections) outlives it.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
