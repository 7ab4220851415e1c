package restart

import (
	"io/fs"
	"os"
)

// stateOpenFlags opens a state file for reading. Windows has no FIFOs at
// file paths to block on, and Go's os has no O_NOFOLLOW there.
const stateOpenFlags = os.O_RDONLY

// writableByOthers is false: a Windows file mode does not say who may
// write (access lists do, and Go reports every directory 0777), so a
// check of it would refuse every state file.
func writableByOthers(fs.FileMode) bool { return false }
