//go:build !linux

package groupcachepeer

import "os/exec"

// setParentDeathSignal does nothing here; stdin EOF still ends the child.
func setParentDeathSignal(*exec.Cmd) {}
