package main

import (
	"context"
	"fmt"
	"net/netip"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/wghooks/wghooks/device"
	"github.com/wghooks/wghooks/hooks"
	"github.com/wghooks/wghooks/hooks/sqlstore"
	"github.com/wghooks/wghooks/internal/testkit"
)

const (
	// fleetClients is how many roaming clients the gateway serves.
	fleetClients = 5
	// fleetUpWindow is how long the replacement without takeover is
	// watched; its clients need about 15 s on their own.
	fleetUpWindow = 3 * time.Second
	fleetAddr     = "198.18.60.1"
)

// fleetClient is a plain upstream client that roams (the gateway has no
// endpoint for it) and counts the initiations it sends and receives.
type fleetClient struct {
	*upstreamClient
	bind *testkit.CountingBind
}

// sceneFleet: gateway machines share one SQLite store (on a real fleet,
// PostgreSQL) and write to it the endpoints and handshakes they learn. A
// machine dies; its replacement takes its address (here: its port on
// loopback) and key, with no state file of its own.
func sceneFleet(tl *timeline) error {
	dir, admin, done, err := openTempStore("fleet")
	if err != nil {
		return err
	}
	defer done()
	key := testkit.NewKeypair()
	gwAt := &testkit.Node{Key: key, Addr: netip.MustParseAddr(fleetAddr)}

	gwA, err := startFleetGateway(dir, "gateway-A", key, 0, true, nil)
	if err != nil {
		return err
	}
	defer gwA.close()
	gwAt.Port = gwA.Port
	var clients []fleetClient
	for i := 0; i < fleetClients; i++ {
		b := testkit.NewCountingBind(nil)
		u, err := startUpstreamOn(fmt.Sprintf("198.18.60.%d", i+2), testkit.Keypair{}, 0, b)
		if err != nil {
			return err
		}
		defer u.dev.Close()
		clients = append(clients, fleetClient{u, b})
		if err := u.dev.IpcSet(testkit.PeerConf(gwAt, true)); err != nil {
			return err
		}
		if err := admin.Put(context.Background(), sqlstore.Peer{PeerConfig: hooks.PeerConfig{
			PublicKey: u.Key.Pub, AllowedIPs: []netip.Prefix{netip.PrefixFrom(u.Addr, 32)}}}); err != nil {
			return err
		}
	}
	tl.say("gateway-A on udp 127.0.0.1:%d, just-in-time peers from a SQLite store it shares with its fleet; %d roaming clients (plain wireguard-go)", gwA.Port, len(clients))
	for i, c := range clients {
		if _, err := c.PingUntil(gwAt.Addr, 500*time.Millisecond, 10*time.Second); err != nil {
			return fmt.Errorf("client %d's first contact: %w", i, err)
		}
	}
	if !testkit.Poll(10*time.Second, func() bool {
		states, err := admin.LoadPeerState(context.Background(), key.Pub, time.Now().Add(-time.Minute), 100)
		return err == nil && len(states) == len(clients)
	}) {
		return fmt.Errorf("the shared store never listed the %d clients' endpoints", len(clients))
	}
	tl.say("every client pinged through gateway-A; gateway-A wrote their endpoints and handshakes to the shared store (every 100 ms here; WGHOOKS_STATE_STORE_INTERVAL, default 10 s)")

	gwA.close()
	sent0, recv0 := make([]int64, len(clients)), make([]int64, len(clients))
	for i, c := range clients {
		sent0[i], recv0[i] = c.bind.InitSent.Load(), c.bind.InitRecv.Load()
	}
	tl.say("gateway-A's machine dies; the clients are idle and notice nothing yet")

	var logMu sync.Mutex
	var takeoverLine string
	t0 := time.Now()
	gwB, err := startFleetGateway(dir, "gateway-B", key, gwAt.Port, true, func(line string) {
		logMu.Lock()
		defer logMu.Unlock()
		if _, after, ok := strings.Cut(line, "takeover: "); ok && takeoverLine == "" {
			takeoverLine = after
		}
	})
	if err != nil {
		return err
	}
	defer gwB.close()
	tl.say("gateway-B up in its place: same key and address, no state file, the same store, takeover on (WGHOOKS_TAKEOVER=on)")
	back := 0
	for _, c := range clients {
		if testkit.Poll(10*time.Second, func() bool { return fleetHandshakeAfter(c, key, t0) }) {
			back++
		}
	}
	allBack := tl.since(t0)
	logMu.Lock()
	line := takeoverLine
	logMu.Unlock()
	if line != "" {
		tl.say("gateway-B's log: takeover: %s", line)
	}
	reached, own := 0, int64(0)
	for i, c := range clients {
		if c.bind.InitRecv.Load()-recv0[i] == 1 {
			reached++
		}
		own += c.bind.InitSent.Load() - sent0[i]
		if _, err := c.PingUntil(gwAt.Addr, time.Second, 10*time.Second); err != nil {
			return fmt.Errorf("client %d: no traffic through gateway-B: %w", i, err)
		}
	}
	sentB := gwB.bind.InitSent.Load()
	tl.say("%d of %d clients back %s after gateway-B started (about one round trip): gateway-B sent %s, %d clients got exactly one, the clients sent %d of their own; pings answered",
		back, len(clients), allBack, jitPlural(uint64(sentB), "initiation"), reached, own)
	tl.record("clients", len(clients))
	tl.record("clients back", back)
	tl.record("clients reached by one initiation", reached)
	tl.record("initiations of the replacement", int(sentB))
	tl.record("initiations of the clients", int(own))
	if back != len(clients) {
		return fmt.Errorf("%d of %d clients back through gateway-B", back, len(clients))
	}

	// The same death without takeover: the replacement knows no one to
	// call, and each client waits out its own timer.
	gwB.close()
	gwC, err := startFleetGateway(dir, "gateway-C", key, gwAt.Port, false, nil)
	if err != nil {
		return err
	}
	defer gwC.close()
	tl.say("the same again without takeover: gateway-B dies, gateway-C starts in its place (same key, store and address); the clients ping every 200 ms")
	var wg sync.WaitGroup
	answered := make([]bool, len(clients))
	for i, cl := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := cl.PingUntil(gwAt.Addr, 200*time.Millisecond, fleetUpWindow)
			answered[i] = err == nil
		}()
	}
	wg.Wait()
	backC := 0
	for _, ok := range answered {
		if ok {
			backC++
		}
	}
	sentC := gwC.bind.InitSent.Load()
	if backC == 0 {
		tl.say("without takeover: no client back, still waiting after %s; gateway-C sent %s (each client starts a new handshake 15 s after its first unanswered packet; an idle one, only when it next sends)",
			fleetUpWindow, jitPlural(uint64(sentC), "initiation"))
	} else {
		tl.say("without takeover: %d of %d clients back within %s; gateway-C sent %s", backC, len(clients), fleetUpWindow, jitPlural(uint64(sentC), "initiation"))
	}
	tl.record("initiations without takeover", int(sentC))
	return nil
}

// fleetGateway is one gateway machine: its own store connection and a
// state directory of its own (a new machine has no state file).
type fleetGateway struct {
	*node
	bind  *testkit.CountingBind
	store *sqlstore.Store
	once  sync.Once
}

func (g *fleetGateway) close() {
	g.once.Do(func() {
		g.dev.Close()
		g.store.Close()
	})
}

// startFleetGateway starts the machine called name on port (0: any);
// verbose, when set, gets its debug lines.
func startFleetGateway(dir, name string, key testkit.Keypair, port uint16, takeover bool, verbose func(string)) (*fleetGateway, error) {
	st, err := sqlstore.Open(filepath.Join(dir, "peers.db"))
	if err != nil {
		return nil, err
	}
	b := testkit.NewCountingBind(nil)
	cfg := device.Config{
		Bind: b,
		JIT:  device.JITConfig{Provider: st},
		Restart: device.RestartConfig{
			StateFile:     filepath.Join(dir, name, "wg0.json"),
			StoreInterval: 100 * time.Millisecond,
			Takeover:      takeover,
		},
		HA: device.HAConfig{FlowEscapeOff: true}, // a gateway keeps its port
	}
	if verbose != nil {
		cfg.Verbosef = func(format string, args ...any) { verbose(fmt.Sprintf(format, args...)) }
	}
	n, err := startNode(name, fleetAddr, key, port, cfg)
	if err != nil {
		st.Close()
		return nil, err
	}
	return &fleetGateway{node: n, bind: b, store: st}, nil
}

// fleetHandshakeAfter reports whether the client completed a handshake
// with the gateway's key after t, as its get reply says.
func fleetHandshakeAfter(c fleetClient, gw testkit.Keypair, t time.Time) bool {
	get, err := c.dev.IpcGet()
	if err != nil {
		return false
	}
	var sec, nsec int64
	fmt.Sscan(testkit.PeerValueOf(get, gw.Pub, "last_handshake_time_sec"), &sec)
	fmt.Sscan(testkit.PeerValueOf(get, gw.Pub, "last_handshake_time_nsec"), &nsec)
	return (sec != 0 || nsec != 0) && time.Unix(sec, nsec).After(t)
}
