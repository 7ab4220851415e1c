package pgtest

import (
	"os"
	"path/filepath"
	"testing"
)

// TestServerStartsStopsAndRestarts: the server answers on its socket,
// stops, crashes and starts again.
func TestServerStartsStopsAndRestarts(t *testing.T) {
	s := New(t)
	sock := filepath.Join(s.SocketDir(), ".s.PGSQL.5432")
	if _, err := os.Stat(sock); err != nil {
		t.Fatalf("no socket: %v", err)
	}
	if err := s.Crash(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(sock); err == nil {
		t.Fatal("socket still there after a crash")
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(sock); err != nil {
		t.Fatalf("no socket after a restart: %v", err)
	}
}
