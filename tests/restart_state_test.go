package tests

import (
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wghooks/wghooks/device"
	"github.com/wghooks/wghooks/internal/testkit"
	"github.com/wghooks/wghooks/tun"
)

// restartStateJSON is a state file as wghooks writes it.
func restartStateJSON(own testkit.Keypair, written time.Time, peers ...string) string {
	return fmt.Sprintf(`{"version":1,"public_key":%q,"written":%q,"peers":[%s]}`,
		base64.StdEncoding.EncodeToString(own.Pub[:]), written.UTC().Format(time.RFC3339Nano), strings.Join(peers, ","))
}

func restartStatePeerJSON(k testkit.Keypair, endpoint string, handshake time.Time) string {
	return fmt.Sprintf(`{"public_key":%q,"endpoint":%q,"last_handshake":%q}`,
		base64.StdEncoding.EncodeToString(k.Pub[:]), endpoint, handshake.UTC().Format(time.RFC3339Nano))
}

// A state file that cannot be used is reported, kept aside untouched, and
// the device starts and carries traffic anyway; the next save writes a
// good file.
func TestRestartStateFileRejected(t *testing.T) {
	other := testkit.NewKeypair()
	for _, tc := range []struct {
		name, want string
		file       func(own, client testkit.Keypair) string
	}{
		{"corrupt", "failed to parse state file", func(own, client testkit.Keypair) string {
			return restartStateJSON(own, time.Now(), restartStatePeerJSON(client, "127.0.0.1:9", time.Now()))[:40]
		}},
		{"future-version", "this wghooks reads version 1", func(own, client testkit.Keypair) string {
			return strings.Replace(restartStateJSON(own, time.Now()), `"version":1`, `"version":7`, 1)
		}},
		{"stale", "stale: written 48h0m", func(own, client testkit.Keypair) string {
			return restartStateJSON(own, time.Now().Add(-48*time.Hour), restartStatePeerJSON(client, "127.0.0.1:9", time.Now().Add(-48*time.Hour)))
		}},
		{"another-key", "written for another private key", func(own, client testkit.Keypair) string {
			return restartStateJSON(other, time.Now(), restartStatePeerJSON(client, "127.0.0.1:9", time.Now()))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			testkit.CheckLeaks(t)
			client := newRestartClient(t, "198.18.6.2")
			key := testkit.NewKeypair()
			statePath := restartStatePath(t)
			bad := tc.file(key, client.Key)
			if err := os.MkdirAll(filepath.Dir(statePath), 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(statePath, []byte(bad), 0o600); err != nil {
				t.Fatal(err)
			}
			port := testkit.FreeUDPPort(t)
			if err := client.dev.IpcSet(restartClientPeerConf(&testkit.Node{Key: key, Addr: netip.MustParseAddr("198.18.6.1")}, port, 0)); err != nil {
				t.Fatal(err)
			}
			s := startRestartServer(t, key, "198.18.6.1", port, testkit.PeerConf(&client.Node, false),
				device.Config{Restart: device.RestartConfig{StateFile: statePath}}, restartDaemonFlow)
			testkit.Eventually(t, 10*time.Second, "a ping through the server", func() bool {
				return client.Ping(s.Addr, 500*time.Millisecond) == nil
			})
			log := s.log.String()
			if !strings.Contains(log, tc.want) || !strings.Contains(log, "starting without saved endpoints") {
				t.Errorf("log does not report the rejected file with %q:\n%s", tc.want, log)
			}
			kept, err := os.ReadFile(statePath + ".rejected")
			if err != nil || string(kept) != bad {
				t.Errorf("rejected file not kept as it was: %q, %v", kept, err)
			}
			if err := s.ours.SaveState(); err != nil {
				t.Fatal(err)
			}
			good, err := os.ReadFile(statePath)
			if err != nil || !strings.Contains(string(good), base64.StdEncoding.EncodeToString(client.Key.Pub[:])) {
				t.Errorf("state file after a save: %q, %v", good, err)
			}
		})
	}
}

// The state file gives endpoints back to configured peers only: it never
// adds a peer, and keys and allowed IPs stay as configured.
func TestRestartStateFileOnlyConfiguredPeers(t *testing.T) {
	testkit.CheckLeaks(t)
	client := newRestartClient(t, "198.18.7.2")
	stranger := testkit.NewKeypair()
	key := testkit.NewKeypair()
	statePath := restartStatePath(t)
	port := testkit.FreeUDPPort(t)
	if err := client.dev.IpcSet(restartClientPeerConf(&testkit.Node{Key: key, Addr: netip.MustParseAddr("198.18.7.1")}, port, 0)); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	file := restartStateJSON(key, now,
		restartStatePeerJSON(client.Key, fmt.Sprintf("127.0.0.1:%d", client.Port), now),
		restartStatePeerJSON(stranger, "127.0.0.1:9", now))
	os.MkdirAll(filepath.Dir(statePath), 0o700)
	if err := os.WriteFile(statePath, []byte(file), 0o600); err != nil {
		t.Fatal(err)
	}
	s := startRestartServer(t, key, "198.18.7.1", port, testkit.PeerConf(&client.Node, false),
		device.Config{Restart: device.RestartConfig{StateFile: statePath}}, restartDaemonFlow)
	// The restored endpoint carries the broadcast: the client completes
	// a handshake it never started.
	testkit.Eventually(t, 10*time.Second, "the broadcast to the restored endpoint to reach the client", func() bool {
		return client.transportRx() > 0
	})
	if peers := s.ours.Peers(); len(peers) != 1 || peers[0] != client.Key.Pub {
		t.Errorf("server peers %x, want only the configured client", peers)
	}
	get := s.ipcGet()
	if strings.Contains(get, hex.EncodeToString(stranger.Pub[:])) {
		t.Errorf("a peer only in the state file was added:\n%s", get)
	}
	if !strings.Contains(get, "allowed_ip=198.18.7.2/32\n") || strings.Count(get, "allowed_ip=") != 1 {
		t.Errorf("allowed IPs changed:\n%s", get)
	}
	if _, err := os.Stat(statePath + ".rejected"); err == nil {
		t.Error("a good state file was rejected")
	}
}

// The state file is rewritten periodically, so a crash (no drain, no
// clean exit) loses at most one interval.
func TestRestartStateFilePeriodic(t *testing.T) {
	testkit.CheckLeaks(t)
	client := newRestartClient(t, "198.18.9.2")
	key := testkit.NewKeypair()
	statePath := restartStatePath(t)
	port := testkit.FreeUDPPort(t)
	if err := client.dev.IpcSet(restartClientPeerConf(&testkit.Node{Key: key, Addr: netip.MustParseAddr("198.18.9.1")}, port, 0)); err != nil {
		t.Fatal(err)
	}
	s := startRestartServer(t, key, "198.18.9.1", port, testkit.PeerConf(&client.Node, false),
		device.Config{Restart: device.RestartConfig{StateFile: statePath, StateInterval: 50 * time.Millisecond}}, restartDaemonFlow)
	if _, err := os.Stat(statePath); err == nil {
		t.Fatal("state file written before the server learned anything")
	}
	testkit.Eventually(t, 10*time.Second, "a ping through the server", func() bool {
		return client.Ping(s.Addr, 500*time.Millisecond) == nil
	})
	testkit.Eventually(t, 10*time.Second, "the periodic write of the client's learned endpoint", func() bool {
		data, err := os.ReadFile(statePath)
		return err == nil && strings.Contains(string(data), base64.StdEncoding.EncodeToString(client.Key.Pub[:])) &&
			strings.Contains(string(data), fmt.Sprintf("127.0.0.1:%d", client.Port))
	})
}

// Peers configured before the private key: the state file waits for the
// key (it can only be checked against it) and is applied with it.
func TestRestartStateFileWaitsForKey(t *testing.T) {
	testkit.CheckLeaks(t)
	client := newRestartClient(t, "198.18.11.2")
	key := testkit.NewKeypair()
	statePath := restartStatePath(t)
	port := testkit.FreeUDPPort(t)
	if err := client.dev.IpcSet(restartClientPeerConf(&testkit.Node{Key: key, Addr: netip.MustParseAddr("198.18.11.1")}, port, 0)); err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(filepath.Dir(statePath), 0o700)
	file := restartStateJSON(key, time.Now(), restartStatePeerJSON(client.Key, fmt.Sprintf("127.0.0.1:%d", client.Port), time.Now()))
	if err := os.WriteFile(statePath, []byte(file), 0o600); err != nil {
		t.Fatal(err)
	}
	log := testkit.NewLog(t, "server")
	tdev, _, err := tun.NewNetstack([]netip.Addr{netip.MustParseAddr("198.18.11.1")}, 0)
	if err != nil {
		t.Fatal(err)
	}
	d, err := device.New(tdev, device.Config{Verbosef: log.Logf, Errorf: log.Logf,
		Restart: device.RestartConfig{StateFile: statePath, Broadcast: device.BroadcastAtFirstPeers}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	testkit.Eventually(t, 5*time.Second, "the netstack device to come up", d.IsUp)
	if err := d.IpcSet(testkit.PeerConf(&client.Node, false)); err != nil {
		t.Fatal(err)
	}
	if err := d.IpcSet(testkit.UAPI("private_key", key.PrivHex(), "listen_port", fmt.Sprint(port))); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(statePath + ".rejected"); err == nil {
		t.Fatalf("state file rejected before the key arrived:\n%s", log)
	}
	// The startup broadcast waited for the key too, and reaches the
	// client at the restored endpoint.
	testkit.Eventually(t, 10*time.Second, "the broadcast to reach the client", func() bool { return client.transportRx() > 0 })
	if !strings.Contains(log.String(), "restored 1 learned endpoints") {
		t.Errorf("endpoint not restored:\n%s", log)
	}
}
