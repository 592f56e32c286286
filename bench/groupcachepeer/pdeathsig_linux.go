package groupcachepeer

import (
	"os/exec"
	"syscall"
)

// setParentDeathSignal makes the kernel SIGKILL the child when the parent
// thread dies: a second guard against orphans besides stdin EOF. (The
// signal follows the OS thread that forked; the Go runtime does not retire
// threads other than those of goroutines exiting while locked to one.)
func setParentDeathSignal(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
