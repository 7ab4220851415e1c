package tests

import "syscall"

// promSysProcAttr ends prometheus with the test binary, however it ends.
func promSysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
