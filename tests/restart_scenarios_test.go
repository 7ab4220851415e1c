package tests

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/wghooks/wghooks/device"
	"github.com/wghooks/wghooks/internal/testkit"
)

// The four server-restart scenarios of issue 3. The client is always
// plain upstream and is never touched: recovery is the server's doing.

type restartTraffic int

const (
	restartContinuous    restartTraffic = iota // the client sends data all along
	restartKeepaliveOnly                       // the client only sends persistent keepalives
	restartIdleThenSend                        // the client is silent across the restart, then sends
)

type restartScenario struct {
	name, what     string
	staticEndpoint bool // the server's configuration holds the client's endpoint
	roams          bool // the client moves to a new address before the restart
	traffic        restartTraffic
}

var restartScenarios = []restartScenario{
	{"a", "client endpoint configured on the server", true, false, restartContinuous},
	{"b", "roaming client: endpoint learned, carried in the state file", false, true, restartContinuous},
	{"c", "client only sends persistent keepalives (endpoint learned)", false, false, restartKeepaliveOnly},
	{"d", "client idle across the restart, then sends", true, false, restartIdleThenSend},
}

// restartOutcome is what one server restart came to.
type restartOutcome struct {
	recovered          bool
	after              time.Duration // new server up → first packet through
	initSent, initRecv int64         // initiations on the new server's socket by then
	server             *restartServer
}

// restartRun restarts a server under scenario sc and waits up to window
// for traffic to flow again. upstream picks a plain upstream server;
// otherwise wghooks with cfg (its state file set here). pingEvery is the
// client's data probe interval.
func restartRun(tb testing.TB, sc restartScenario, upstream bool, window, pingEvery time.Duration, cfg device.Config) restartOutcome {
	tb.Helper()
	client := newRestartClient(tb, "198.18.3.2")
	key := testkit.NewKeypair()
	cfg.Restart.StateFile = restartStatePath(tb)
	start := func(port uint16) *restartServer {
		conf := testkit.PeerConf(&client.Node, sc.staticEndpoint)
		if upstream {
			return startUpstreamRestartServer(tb, key, "198.18.3.1", port, conf)
		}
		return startRestartServer(tb, key, "198.18.3.1", port, conf, cfg, restartDaemonFlow)
	}
	// The client knows the server's address before the server starts,
	// as in life; a server that knows the client's reaches it first.
	port := testkit.FreeUDPPort(tb)
	serverNode := &testkit.Node{Key: key, Addr: netip.MustParseAddr("198.18.3.1")}
	if err := client.dev.IpcSet(restartClientPeerConf(serverNode, port, 0)); err != nil {
		tb.Fatal(err)
	}
	s1 := start(port)
	if sc.staticEndpoint && !upstream && cfg.Restart.Broadcast != device.BroadcastOff {
		testkit.Eventually(tb, 10*time.Second, "the first server's broadcast to reach the client", func() bool { return client.transportRx() > 0 })
	}
	down := 500 * time.Millisecond
	if sc.traffic == restartKeepaliveOnly {
		// Long enough for keepalives to go out on the dead session.
		down = 1500 * time.Millisecond
		if err := client.dev.IpcSet(testkit.UAPI("public_key", key.PubHex(), "persistent_keepalive_interval", "1")); err != nil {
			tb.Fatal(err)
		}
		testkit.Eventually(tb, 10*time.Second, "the client's keepalives to reach the first server", func() bool { return s1.transportRx() > 0 })
	} else {
		testkit.Eventually(tb, 10*time.Second, "a ping through the first server", func() bool { return client.Ping(s1.Addr, 500*time.Millisecond) == nil })
	}
	if sc.roams {
		// A new source port, as after a NAT rebinding: the server follows
		// the client there and only the state file can tell the next
		// process.
		if err := client.dev.IpcSet("listen_port=0\n"); err != nil {
			tb.Fatal(err)
		}
		client.Port = testkit.ListenPort(tb, client.dev)
		moved := fmt.Sprintf("endpoint=127.0.0.1:%d\n", client.Port)
		testkit.Eventually(tb, 10*time.Second, "the server to follow the client to "+moved, func() bool {
			return client.Ping(s1.Addr, 500*time.Millisecond) == nil && strings.Contains(s1.ipcGet(), moved)
		})
	}
	var pinger *testkit.Pinger
	if sc.traffic == restartContinuous {
		pinger = testkit.NewPinger(tb, &client.Node, s1.Addr)
		pinger.Every(pingEvery)
	}

	s1.close()
	clientRx := client.transportRx()
	time.Sleep(down) // the outage: the client keeps sending on its old session
	s2 := start(s1.Port)
	if sc.traffic == restartIdleThenSend {
		pinger = testkit.NewPinger(tb, &client.Node, s2.Addr)
		pinger.Every(pingEvery)
	}

	var at time.Time
	through := func() bool {
		if pinger != nil {
			var ok bool
			at, _, ok = pinger.FirstAnswer(s2.upAt, 2*pingEvery)
			return ok
		}
		// Keepalives only: the first data or keepalive decrypted on
		// either side (the server confirms a session it initiated with a
		// keepalive; the client's next one follows within its interval).
		if s2.transportRx() > 0 || client.transportRx() > clientRx {
			at = time.Now()
			return true
		}
		return false
	}
	out := restartOutcome{server: s2}
	out.recovered = testkit.Poll(window, through)
	if out.recovered {
		out.after = at.Sub(s2.upAt)
	}
	out.initSent, out.initRecv = s2.bind.InitSent.Load(), s2.bind.InitRecv.Load()
	if pinger != nil {
		pinger.Stop()
	}
	return out
}

func TestRestartScenarios(t *testing.T) {
	for _, sc := range restartScenarios {
		t.Run(sc.name, func(t *testing.T) {
			testkit.CheckLeaks(t)
			t.Logf("scenario (%s): %s", sc.name, sc.what)
			ours := restartRun(t, sc, false, 10*time.Second, 50*time.Millisecond, device.Config{})
			if !ours.recovered {
				t.Fatalf("wghooks server: traffic did not flow again within 10s (initiations sent %d, received %d)", ours.initSent, ours.initRecv)
			}
			// The server initiated the one handshake; the client, left to
			// its timers, would have needed 15 s or more.
			if ours.initSent != 1 || ours.initRecv != 0 {
				t.Errorf("wghooks server: %d initiations sent and %d received until traffic flowed, want 1 sent by the server and none from the client", ours.initSent, ours.initRecv)
			}
			if testkit.Poll(time.Second, func() bool { return ours.server.bind.Initiations() > 1 }) {
				t.Errorf("wghooks server: %d initiations after recovery, want at most one handshake per peer", ours.server.bind.Initiations())
			}
			if !sc.staticEndpoint && !strings.Contains(ours.server.log.String(), "restored 1 learned endpoints") {
				t.Errorf("wghooks server did not restore the learned endpoint from the state file; its log:\n%s", ours.server.log)
			}

			window := min(max(3*ours.after, 2*time.Second), 8*time.Second)
			up := restartRun(t, sc, true, window, 50*time.Millisecond, device.Config{})
			if up.recovered {
				t.Fatalf("plain upstream server recovered in %v too: the scenario proves nothing", up.after)
			}
			t.Logf("wghooks: traffic back %v after the new server was up, %d handshake; upstream: still down after %v",
				ours.after.Round(time.Millisecond), ours.initSent+ours.initRecv, window)
		})
	}
}

// Stale-session wake alone, without the broadcast: the client's data on
// its old session makes the new server initiate at once.
func TestRestartStaleWake(t *testing.T) {
	testkit.CheckLeaks(t)
	sc := restartScenarios[0]
	cfg := device.Config{Restart: device.RestartConfig{Broadcast: device.BroadcastOff}}
	out := restartRun(t, sc, false, 10*time.Second, 50*time.Millisecond, cfg)
	if !out.recovered {
		t.Fatalf("traffic did not flow again within 10s; server log:\n%s", out.server.log)
	}
	if st := out.server.ours.Stats(); st.StaleWakes < 1 || st.Broadcasts != 0 {
		t.Errorf("stale wakes %d, broadcasts %d: want the wake, not a broadcast, to have recovered", st.StaleWakes, st.Broadcasts)
	}
	if out.initSent != 1 || out.initRecv != 0 {
		t.Errorf("%d initiations sent, %d received; want exactly one, from the server", out.initSent, out.initRecv)
	}
	t.Logf("recovered %v after the new server was up, by stale-session wake", out.after.Round(time.Millisecond))
}

// An embedder on netstack: the TUN is up before anything is configured.
func TestRestartBroadcastNetstack(t *testing.T) {
	handshook := func(get string) bool {
		return strings.Contains(get, "last_handshake_time_sec=") && !strings.Contains(get, "last_handshake_time_sec=0\n")
	}
	for _, tc := range []struct {
		name string
		mode device.BroadcastMode
	}{{"at-first-peers", device.BroadcastAtFirstPeers}, {"explicit-call", device.BroadcastAtUp}} {
		t.Run(tc.name, func(t *testing.T) {
			testkit.CheckLeaks(t)
			client := newRestartClient(t, "198.18.4.2")
			key := testkit.NewKeypair()
			// The client knows where the server will be; it sends nothing.
			port := testkit.FreeUDPPort(t)
			if err := client.dev.IpcSet(restartClientPeerConf(&testkit.Node{Key: key, Addr: netip.MustParseAddr("198.18.4.1")}, port, 0)); err != nil {
				t.Fatal(err)
			}
			cfg := device.Config{Restart: device.RestartConfig{Broadcast: tc.mode}}
			s := startRestartServer(t, key, "198.18.4.1", port, testkit.PeerConf(&client.Node, true), cfg, restartNetstackFlow)
			if tc.mode == device.BroadcastAtUp {
				if n := s.bind.InitSent.Load(); n != 0 {
					t.Fatalf("%d initiations sent before Broadcast was called", n)
				}
				n, err := s.ours.Broadcast()
				if err != nil || n != 1 {
					t.Fatalf("Broadcast() = %d, %v; want 1 peer", n, err)
				}
			}
			testkit.Eventually(t, 10*time.Second, "the client to complete a handshake it did not start", func() bool {
				get, _ := client.dev.IpcGet()
				return handshook(get)
			})
			if s.bind.InitSent.Load() != 1 || s.bind.InitRecv.Load() != 0 {
				t.Errorf("%d initiations sent, %d received; want one, from the server", s.bind.InitSent.Load(), s.bind.InitRecv.Load())
			}
			testkit.Eventually(t, 10*time.Second, "a ping through the new session", func() bool {
				return client.Ping(s.Addr, time.Second) == nil
			})
		})
	}
}
