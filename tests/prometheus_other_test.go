//go:build !linux

package tests

import "syscall"

// promSysProcAttr: only Linux can tie prometheus to the test binary's
// life; Cleanup stops it elsewhere.
func promSysProcAttr() *syscall.SysProcAttr { return nil }
