package tests

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	wgdevice "golang.zx2c4.com/wireguard/device"

	"github.com/wghooks/wghooks/device"
	"github.com/wghooks/wghooks/internal/testkit"
)

// restartDeadPeerRun restarts a plain upstream server under a wghooks
// client sending data, and returns how long after the new server was up
// the client's data flowed again (ok false: not within window), and how
// many initiations the client sent from the restart on.
func restartDeadPeerRun(t *testing.T, timeout, window time.Duration) (after time.Duration, ok bool, initiations int64) {
	t.Helper()
	cb := testkit.NewCountingBind(nil)
	cfg := device.Config{Bind: cb, Restart: device.RestartConfig{DeadPeerTimeout: timeout}, HA: device.HAConfig{FlowEscapeOff: true}}
	client, cdev := testkit.NewWghooks(t, "198.18.8.2", cfg)
	key := testkit.NewKeypair()
	port := testkit.FreeUDPPort(t)
	s1 := startUpstreamRestartServer(t, key, "198.18.8.1", port, testkit.PeerConf(client, false))
	if err := cdev.IpcSet(testkit.UAPI("public_key", key.PubHex(), "allowed_ip", "198.18.8.1/32", "endpoint", fmt.Sprintf("127.0.0.1:%d", port))); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 10*time.Second, "a ping through the first server", func() bool {
		return client.Ping(netip.MustParseAddr("198.18.8.1"), 500*time.Millisecond) == nil
	})
	pinger := testkit.NewPinger(t, client, s1.Addr)
	pinger.Every(50 * time.Millisecond)
	// Traffic flows for a while first: within 5 s of the last handshake
	// upstream would refuse any new initiation, ours included.
	time.Sleep(wgdevice.RekeyTimeout)
	s1.close()
	before := cb.InitSent.Load()
	time.Sleep(500 * time.Millisecond) // the outage
	s2 := startUpstreamRestartServer(t, key, "198.18.8.1", port, testkit.PeerConf(client, false))
	var at time.Time
	ok = testkit.Poll(window, func() bool {
		at, _, ok = pinger.FirstAnswer(s2.upAt, 100*time.Millisecond)
		return ok
	})
	pinger.Stop()
	return at.Sub(s2.upAt), ok, cb.InitSent.Load() - before
}

// Client-side dead-peer detection: a wghooks client whose (plain
// upstream) server restarted re-handshakes after DeadPeerTimeout instead
// of upstream's 15 s, with one initiation.
func TestRestartDeadPeerDetection(t *testing.T) {
	testkit.CheckLeaks(t)
	after, ok, n := restartDeadPeerRun(t, time.Second, 10*time.Second)
	if !ok {
		t.Fatalf("client with dead-peer detection did not recover within 10s (%d initiations)", n)
	}
	if n < 1 || n > 2 {
		t.Errorf("client sent %d initiations to recover, want 1 (2 if one raced the restart)", n)
	}
	window := min(max(3*after, 2*time.Second), 8*time.Second)
	if _, ok, _ := restartDeadPeerRun(t, 0, window); ok {
		t.Fatalf("client without dead-peer detection recovered within %v too: the test proves nothing", window)
	}
	t.Logf("dead-peer detection: traffic back %v after the new server was up (%d initiation); without: still down after %v",
		after.Round(time.Millisecond), n, window)
}
