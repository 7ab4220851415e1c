//go:build unix

// FIFOs, symlinks and directory modes: Unix file semantics (on Windows the
// state file is read without these checks, statefile_windows.go).

package restart

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wghooks/wghooks/device/feature"
)

// TestReadStateFileRefusesFIFO: a FIFO at the state file's path is refused
// at once; it used to hang the start (and SIGINT with it).
func TestReadStateFileRefusesFIFO(t *testing.T) {
	path := filepath.Join(t.TempDir(), "wg0.json")
	if err := syscall.Mkfifo(path, 0o600); err != nil {
		t.Skip(err)
	}
	done := make(chan error, 1)
	go func() { _, err := readStateFile(path); done <- err }()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "not a regular file") {
			t.Fatalf("FIFO: %v, want not a regular file", err)
		}
	case <-time.After(5 * time.Second):
		// Release the blocked reader before failing.
		if w, err := os.OpenFile(path, os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
			w.Close()
		}
		<-done
		t.Fatal("reading a FIFO state file blocked")
	}
}

// TestReadStateFileRefusesSymlink: the state file is not followed through
// a symlink.
func TestReadStateFileRefusesSymlink(t *testing.T) {
	dir := t.TempDir()
	real := filepath.Join(dir, "real.json")
	writeTestState(t, real)
	link := filepath.Join(dir, "wg0.json")
	if err := os.Symlink(real, link); err != nil {
		t.Fatal(err)
	}
	if _, err := readStateFile(real); err != nil {
		t.Fatalf("regular file: %v", err)
	}
	if _, err := readStateFile(link); err == nil {
		t.Fatal("state file read through a symlink")
	}
}

// TestReadStateFileRefusesWritableDir: a state file in a directory that
// group or others can write to is refused, the error naming the directory
// and its mode; the file is left where it is.
func TestReadStateFileRefusesWritableDir(t *testing.T) {
	for _, mode := range []os.FileMode{0o770, 0o757, 0o1777} {
		dir := filepath.Join(t.TempDir(), "state")
		if err := os.Mkdir(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, "wg0.json")
		writeTestState(t, path)
		if err := os.Chmod(dir, mode); err != nil {
			t.Fatal(err)
		}
		_, err := readStateFile(path)
		if err == nil {
			t.Errorf("mode %v: state file in a writable directory read", mode)
			continue
		}
		if msg := err.Error(); !strings.Contains(msg, dir) || !strings.Contains(msg, (mode&os.ModePerm).String()) {
			t.Errorf("mode %v: error %q does not name the directory and its mode", mode, msg)
		}
	}
}

func writeTestState(t *testing.T, path string) {
	t.Helper()
	_, own := stateTestKey(1)
	f := &stateFile{Version: stateVersion, PublicKey: feature.EncodeKey(own), Written: time.Now()}
	if err := writeStateFile(path, f); err != nil {
		t.Fatal(err)
	}
}
