//go:build !linux

package bench

import "os/exec"

// setParentDeathSignal is Linux-only; elsewhere a child outlives a killed
// parent until stopped.
func setParentDeathSignal(*exec.Cmd) {}
