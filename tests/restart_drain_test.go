package tests

import (
	"encoding/base64"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/wghooks/wghooks/device"
	"github.com/wghooks/wghooks/internal/testkit"
	"github.com/wghooks/wghooks/ipc"
)

func TestRestartDrainOverUAPI(t *testing.T) {
	testkit.CheckLeaks(t)
	client := newRestartClient(t, "198.18.5.2")
	key := testkit.NewKeypair()
	statePath := restartStatePath(t)
	port := testkit.FreeUDPPort(t)
	// Roaming client: the server learns its endpoint from its packets.
	if err := client.dev.IpcSet(restartClientPeerConf(&testkit.Node{Key: key, Addr: netip.MustParseAddr("198.18.5.1")}, port, 0)); err != nil {
		t.Fatal(err)
	}
	s := startRestartServer(t, key, "198.18.5.1", port, testkit.PeerConf(&client.Node, false),
		device.Config{Restart: device.RestartConfig{StateFile: statePath}}, restartDaemonFlow)
	testkit.Eventually(t, 10*time.Second, "a ping through the server", func() bool {
		return client.Ping(s.Addr, 500*time.Millisecond) == nil
	})

	dir := t.TempDir()
	ln, err := ipc.Listen(dir, "wgdrain")
	if err != nil {
		t.Fatal(err)
	}
	srv := ipc.NewServer(s.ours, t.Logf)
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	sock := ipc.SocketPath(dir, "wgdrain")

	// A bad value is refused whole and changes nothing.
	if reply := testkit.Raw(t, sock, "set=1\ndrain=maybe\n\n"); reply != "errno=-22\n" {
		t.Errorf("drain=maybe answered %q, want errno=-22", reply)
	}
	if s.ours.Draining() {
		t.Fatal("draining after a refused transaction")
	}
	if _, err := os.Stat(statePath); err == nil {
		t.Fatal("state file written by a refused transaction")
	}

	before := s.bind.InitSent.Load()
	if reply := testkit.Raw(t, sock, "set=1\ndrain=true\n\n"); reply != "errno=0\n" {
		t.Fatalf("drain=true answered %q, want errno=0", reply)
	}
	if !s.ours.Draining() || s.ours.Stats().Drains != 1 {
		t.Errorf("after drain: Draining %v, Stats().Drains %d", s.ours.Draining(), s.ours.Stats().Drains)
	}
	if get := testkit.Raw(t, sock, "get=1\n\n"); !strings.Contains(get, "wghooks_draining=true\n") {
		t.Errorf("get reply does not report draining:\n%s", get)
	}

	// The state file holds the client's learned endpoint, mode 0600.
	st, err := os.Stat(statePath)
	if err != nil {
		t.Fatalf("drain did not write the state file: %v", err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("state file mode %v, want 0600", st.Mode().Perm())
	}
	data, _ := os.ReadFile(statePath)
	if !strings.Contains(string(data), base64.StdEncoding.EncodeToString(client.Key.Pub[:])) || !strings.Contains(string(data), "127.0.0.1:") {
		t.Errorf("state file lacks the client's learned endpoint:\n%s", data)
	}

	// The keypairs expired: the server's next packet starts a fresh
	// handshake, exactly one.
	if err := s.Ping(client.Addr, 5*time.Second); err != nil {
		t.Fatalf("ping from the drained server: %v", err)
	}
	if n := s.bind.InitSent.Load() - before; n != 1 {
		t.Errorf("the drained server sent %d initiations for its next packet, want 1", n)
	}

	if reply := testkit.Raw(t, sock, "set=1\ndrain=false\n\n"); reply != "errno=0\n" || s.ours.Draining() {
		t.Errorf("drain=false answered %q, draining %v", reply, s.ours.Draining())
	}
}
