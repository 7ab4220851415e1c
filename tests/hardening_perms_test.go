//go:build unix

package tests

// The permissions of the socket, the state file and the peer store
// (hardening): file modes, so Unix only.

import (
	"context"
	"encoding/base64"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	wgipc "golang.zx2c4.com/wireguard/ipc"

	"github.com/wghooks/wghooks/device"
	"github.com/wghooks/wghooks/hooks/sqlstore"
	"github.com/wghooks/wghooks/internal/testkit"
	"github.com/wghooks/wghooks/ipc"
)

// TestHardeningFilePermissions: what wghooks writes is its owner's only,
// whatever the umask: the state file (0600, its directory 0700), the
// peer store and its WAL files (0600, directory 0700) as `wghooks peers
// add` creates them; the UAPI socket and its directory keep upstream's
// modes (socket 0700: only root connects; directory 0755).
func TestHardeningFilePermissions(t *testing.T) {
	testkit.CheckLeaks(t)
	mode := func(path string) os.FileMode {
		t.Helper()
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		return fi.Mode().Perm()
	}

	// State file, written by a device into a directory it creates.
	state := filepath.Join(t.TempDir(), "state", "wg0.json")
	client := testkit.NewKeypair()
	_, d := testkit.NewWghooks(t, "198.18.12.1", device.Config{
		Restart: device.RestartConfig{StateFile: state, StateInterval: -1},
		HA:      device.HAConfig{FlowEscapeOff: true},
	})
	if err := d.IpcSet(testkit.UAPI("public_key", client.PubHex(), "endpoint", "127.0.0.1:9", "allowed_ip", "198.18.12.2/32")); err != nil {
		t.Fatal(err)
	}
	if err := d.SaveState(); err != nil {
		t.Fatal(err)
	}
	if m := mode(state); m != 0o600 {
		t.Errorf("state file mode %v, want 0600", m)
	}
	if m := mode(filepath.Dir(state)); m != 0o700 {
		t.Errorf("state directory mode %v, want 0700", m)
	}

	// Peer store, created by the CLI while a daemon holds it open (so the
	// WAL files exist).
	bin := netnsBuild(t, "github.com/wghooks/wghooks/cmd/wghooks", "wghooks")
	dir := t.TempDir()
	db := filepath.Join(dir, "lib", "wg0.db")
	add := func(k testkit.Keypair, ip string) {
		out, err := exec.Command(bin, "-socket-dir", dir, "peers", "-db", db, "add", "wg0",
			base64.StdEncoding.EncodeToString(k.Pub[:]), "allowed-ips", ip).CombinedOutput()
		if err != nil {
			t.Fatalf("peers add: %v\n%s", err, out)
		}
	}
	add(testkit.NewKeypair(), "198.18.12.3/32")
	store, err := sqlstore.Open(db)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	add(testkit.NewKeypair(), "198.18.12.4/32")
	if _, err := store.Count(context.Background()); err != nil {
		t.Fatal(err)
	}
	if m := mode(filepath.Dir(db)); m != 0o700 {
		t.Errorf("store directory mode %v, want 0700", m)
	}
	for _, f := range []string{db, db + "-wal", db + "-shm"} {
		if m := mode(f); m != 0o600 {
			t.Errorf("%s mode %v, want 0600", filepath.Base(f), m)
		}
	}

	// UAPI socket in a directory of our own: upstream's modes.
	sockDir := filepath.Join(t.TempDir(), "run")
	ln, err := ipc.Listen(sockDir, "hardp0")
	if err != nil {
		t.Fatal(err)
	}
	if m := mode(sockDir); m != 0o755 {
		t.Errorf("socket directory mode %v, want 0755 as upstream's", m)
	}
	if m := mode(ipc.SocketPath(sockDir, "hardp0")); m != 0o700 {
		t.Errorf("socket mode %v, want 0700 as upstream's", m)
	}
	hardCloseUAPI(ln)

	// In the real directory, next to one upstream creates itself.
	if os.Geteuid() != 0 {
		t.Log("not root: skipping the comparison in /var/run/wireguard")
		return
	}
	ours, theirs := fmt.Sprintf("hpw%d", os.Getpid()), fmt.Sprintf("hpu%d", os.Getpid())
	ln, err = ipc.Listen("", ours)
	if err != nil {
		t.Fatal(err)
	}
	defer hardCloseUAPI(ln)
	f, err := wgipc.UAPIOpen(theirs)
	if err != nil {
		t.Fatal(err)
	}
	defer os.Remove(ipc.SocketPath("", theirs))
	defer f.Close()
	if a, b := mode(ipc.SocketPath("", ours)), mode(ipc.SocketPath("", theirs)); a != b || a&0o077 != 0 {
		t.Errorf("socket mode %v, upstream's %v", a, b)
	}
	if m := mode(ipc.DefaultDir); m != 0o755 {
		t.Errorf("%s mode %v, want 0755", ipc.DefaultDir, m)
	}
}

// hardCloseUAPI closes a UAPI listener nobody accepts on. Upstream's
// listener (DefaultDir) reports its end once from each of its two
// goroutines; the Accepts let both go.
func hardCloseUAPI(ln net.Listener) {
	ln.Close()
	if _, ok := ln.(*wgipc.UAPIListener); ok {
		ln.Accept()
		ln.Accept()
	}
}
