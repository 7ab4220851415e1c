//go:build unix

// FIFOs, file modes and '?' in file names: Unix file semantics.

package sqlstore

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/wghooks/wghooks/hooks"
)

// TestOpenPathWithURIChars: a path holding '#', '?' or '%' (Linux allows
// them in interface names) opens exactly that file, and every file the
// store leaves in the directory is mode 0600.
func TestOpenPathWithURIChars(t *testing.T) {
	for _, name := range []string{"wg#1.db", "wg?1.db", "wg%231.db", "wg 1&x=y.db"} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, name)
			s, err := Open(path)
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Put(context.Background(), Peer{PeerConfig: hooks.PeerConfig{PublicKey: key(1), PresharedKey: [32]byte{9}}}); err != nil {
				t.Fatal(err)
			}
			entries, _ := os.ReadDir(dir)
			for _, e := range entries {
				fi, err := e.Info()
				if err != nil {
					t.Fatal(err)
				}
				if fi.Mode().Perm() != 0o600 {
					t.Errorf("%s: mode %v, want 0600", e.Name(), fi.Mode().Perm())
				}
				if e.Name() != name && e.Name() != name+"-wal" && e.Name() != name+"-shm" && e.Name() != name+"-journal" {
					t.Errorf("store wrote %q beside %q", e.Name(), name)
				}
			}
			s.Close()
			s, err = Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if _, err := s.LookupPeer(context.Background(), key(1)); err != nil {
				t.Fatalf("reopened: %v", err)
			}
		})
	}
}

// TestOpenRefusesNonRegular: a FIFO (or a directory) at the path is
// refused at once, without blocking.
func TestOpenRefusesNonRegular(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "wg0.db")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skip(err)
	}
	null := filepath.Join(dir, "null.db")
	if err := os.Symlink(os.DevNull, null); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{fifo, null} {
		s, err := Open(p)
		if err == nil {
			s.Close()
			t.Errorf("Open(%q) succeeded", p)
		} else if !strings.Contains(err.Error(), "not a regular file") {
			t.Errorf("Open(%q): %v, want it to say not a regular file", p, err)
		}
	}
}
