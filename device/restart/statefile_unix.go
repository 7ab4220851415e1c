//go:build unix

package restart

import (
	"io/fs"
	"os"
	"syscall"
)

// stateOpenFlags opens a state file without following a symlink and
// without blocking (a FIFO would hang the start).
const stateOpenFlags = os.O_RDONLY | syscall.O_NOFOLLOW | syscall.O_NONBLOCK

// writableByOthers reports whether a directory of mode lets group or
// others write into it.
func writableByOthers(mode fs.FileMode) bool { return mode.Perm()&0o022 != 0 }
