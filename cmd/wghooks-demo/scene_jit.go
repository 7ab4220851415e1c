package main

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/wghooks/wghooks/device"
	"github.com/wghooks/wghooks/hooks"
	"github.com/wghooks/wghooks/hooks/sqlstore"
	"github.com/wghooks/wghooks/internal/testkit"
)

func sceneJIT(tl *timeline) error {
	dir, store, done, err := openTempStore("jit")
	if err != nil {
		return err
	}
	defer done()

	var mu sync.Mutex
	events := map[hooks.PeerEventKind][]hooks.PeerEvent{}
	seen := make(chan hooks.PeerEvent, 16)
	onEvent := func(ev hooks.PeerEvent) {
		mu.Lock()
		events[ev.Kind] = append(events[ev.Kind], ev)
		mu.Unlock()
		select {
		case seen <- ev:
		default:
		}
	}
	// Every gateway process has the same configuration: the store, the
	// outbound side on, and a state file for the next process.
	gwCfg := device.Config{
		JIT: device.JITConfig{
			Provider:    store,
			IdleTimeout: 2 * time.Second,
			OnPeerEvent: onEvent,
			Outbound:    true,
		},
		Restart: device.RestartConfig{StateFile: filepath.Join(dir, "gateway.json")},
	}
	gw, _, err := startJITGateway(gwCfg, 0)
	if err != nil {
		return err
	}
	defer gw.dev.Close()
	stop, err := gw.ServeHTTP("hello from a gateway that had never heard of you")
	if err != nil {
		return err
	}
	defer stop()
	tl.say("gateway up on udp 127.0.0.1:%d with an empty device and a SQLite store (%s)", gw.Port, filepath.Base(store.Path()))

	// Alice keeps to plain WireGuard behaviour (no probe handshakes of
	// her own), so every initiation she sends is one the gateway needed.
	aliceBind := testkit.NewCountingBind(nil)
	alice, err := startNode("alice", "198.18.1.1", testkit.Keypair{}, 0, device.Config{Bind: aliceBind, HA: device.HAConfig{FlowEscapeOff: true}})
	if err != nil {
		return err
	}
	defer alice.dev.Close()
	if err := alice.addPeer(gw.Node, true); err != nil {
		return err
	}
	if err := store.Put(context.Background(), sqlstore.Peer{
		PeerConfig: hooks.PeerConfig{PublicKey: alice.Key.Pub, AllowedIPs: []netip.Prefix{netip.PrefixFrom(alice.Addr, 32)}},
		Comment:    "alice's laptop",
	}); err != nil {
		return err
	}
	n, _ := store.Count(context.Background())
	tl.say("alice's key is in the store (%d peer), not on the gateway: gateway holds %d peers", n, gw.dev.Stats().PeersActive)

	t0 := time.Now()
	body, err := alice.Get(gw.Addr, 10*time.Second)
	if err != nil {
		return fmt.Errorf("alice's first request: %w", err)
	}
	mu.Lock()
	inst := events[hooks.PeerInstalled]
	mu.Unlock()
	if len(inst) != 1 {
		return fmt.Errorf("expected one install, got %d", len(inst))
	}
	inits := alice.dev.Stats().HandshakesSent
	tl.say("alice fetched %q in %s", body, tl.since(t0))
	tl.say("peer provisioned on first contact in %s, exactly %d initiation", inst[0].Latency.Round(10*time.Microsecond), inits)
	if st := gw.dev.Stats(); st.InitiationsDecoded > 0 && st.ProviderLookups > 0 && st.InstallTransactions > 0 {
		ms := func(sum float64, n uint64) string {
			return (time.Duration(sum * 1e9 / float64(n))).Round(10 * time.Microsecond).String()
		}
		tl.say("  of which: authenticating alice's initiation %s, asking the store %s, installing her peer %s (the rest: queues, then upstream answers as for any peer)",
			ms(st.DecodeSeconds, st.InitiationsDecoded), ms(st.ProviderLatencySeconds, st.ProviderLookups), ms(st.InstallSeconds, st.InstallTransactions))
	}

	mallory, err := startNode("mallory", "198.18.1.66", testkit.Keypair{}, 0, device.Config{})
	if err != nil {
		return err
	}
	defer mallory.dev.Close()
	if err := mallory.addPeer(gw.Node, true); err != nil {
		return err
	}
	mallory.Ping(gw.Addr, 500*time.Millisecond)
	if waitEvent(seen, hooks.PeerRefused, 3*time.Second) {
		tl.say("mallory (key not in the store) knocked: refused, and remembered as unknown for a minute")
	}

	tl.say("alice goes quiet; the gateway evicts idle peers after 2s")
	if !waitEvent(seen, hooks.PeerEvicted, 10*time.Second) {
		return fmt.Errorf("alice was not evicted")
	}
	tl.say("alice evicted: gateway holds %d peers", gw.dev.Stats().PeersActive)

	if p := alice.dev.Upstream().LookupPeer(gw.Key.Pub); p != nil {
		p.ExpireCurrentKeypairs() // what alice's next rekey would do
	}
	t1 := time.Now()
	if _, err := alice.Get(gw.Addr, 10*time.Second); err != nil {
		return fmt.Errorf("alice's request after eviction: %w", err)
	}
	tl.say("alice came back: provisioned again, request answered in %s", tl.since(t1))

	gw2, err := jitRestart(tl, gw, gwCfg, alice, aliceBind)
	if gw2 != nil {
		defer gw2.dev.Close()
	}
	if err != nil {
		return err
	}
	return jitOutbound(tl, gw2, store)
}

// startJITGateway starts one gateway process at 198.18.0.1 on port (0:
// any), counting the initiations it sends.
func startJITGateway(cfg device.Config, port uint16) (*node, *testkit.CountingBind, error) {
	b := testkit.NewCountingBind(nil)
	cfg.Bind = b
	gw, err := startNode("gateway", "198.18.0.1", jitGatewayKey, port, cfg)
	return gw, b, err
}

// jitGatewayKey is the gateway's private key, the same in every process.
var jitGatewayKey = testkit.NewKeypair()

// jitRestart stops the gateway and starts a new process with the same key,
// port, state file and store, and measures how soon alice's traffic flows
// again and who initiated. The new gateway is returned even with an error,
// for the caller to close.
func jitRestart(tl *timeline, gw *node, cfg device.Config, alice *node, aliceBind *testkit.CountingBind) (*node, error) {
	port := gw.Port
	gw.dev.Close()
	if alice.Ping(gw.Addr, 200*time.Millisecond) == nil {
		return nil, fmt.Errorf("a ping through the stopped gateway was answered")
	}
	saved, err := os.ReadFile(cfg.Restart.StateFile)
	if err != nil {
		return nil, fmt.Errorf("failed to read the gateway's state file: %w", err)
	}
	tl.say("gateway stopped; its state file marks %s as just in time; alice's ping goes unanswered",
		jitPlural(uint64(strings.Count(string(saved), `"jit": true`)), "peer"))
	aliceInits := aliceBind.InitSent.Load()
	t0 := time.Now()
	gw2, gwBind, err := startJITGateway(cfg, port)
	if err != nil {
		return nil, fmt.Errorf("failed to start the new gateway: %w", err)
	}
	tl.say("new gateway process up: same key, port %d, store and state file; no peers configured", gw2.Port)
	if _, err := alice.PingUntil(gw2.Addr, 20*time.Millisecond, 10*time.Second); err != nil {
		return gw2, fmt.Errorf("alice's traffic after the restart: %w", err)
	}
	back := tl.since(t0)
	st := gw2.dev.Stats()
	tl.say("gateway restarted: alice's traffic back in %s; the gateway re-asked the store (%s) and sent %s (alice sent %d)",
		back, jitPlural(st.ProviderLookups, "lookup"), jitPlural(uint64(gwBind.InitSent.Load()), "initiation"), aliceBind.InitSent.Load()-aliceInits)
	return gw2, nil
}

// jitOutbound has the gateway reach bob first: bob is in the store with
// his endpoint, not on the gateway, and cannot call (he does not know
// where the gateway is).
func jitOutbound(tl *timeline, gw *node, store *sqlstore.Store) error {
	bobBind := testkit.NewCountingBind(nil)
	bob, err := startNode("bob", "198.18.1.2", testkit.Keypair{}, 0, device.Config{Bind: bobBind, HA: device.HAConfig{FlowEscapeOff: true}})
	if err != nil {
		return err
	}
	defer bob.dev.Close()
	if err := bob.addPeer(gw.Node, false); err != nil {
		return err
	}
	if err := store.Put(context.Background(), sqlstore.Peer{
		PeerConfig: hooks.PeerConfig{
			PublicKey:  bob.Key.Pub,
			AllowedIPs: []netip.Prefix{netip.PrefixFrom(bob.Addr, 32)},
			Endpoint:   netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), bob.Port),
		},
		Comment: "bob's build server",
	}); err != nil {
		return err
	}
	tl.say("bob is in the store with his address and endpoint; he knows the gateway's key, not where it is")
	installs := gw.dev.Stats().OutboundInstalls
	t0 := time.Now()
	if _, err := gw.PingUntil(bob.Addr, 20*time.Millisecond, 10*time.Second); err != nil {
		return fmt.Errorf("the gateway's ping to bob: %w", err)
	}
	answered := tl.since(t0)
	if n := gw.dev.Stats().OutboundInstalls - installs; n != 1 || !gw.dev.HasPeer(bob.Key.Pub) {
		return fmt.Errorf("bob answered but the gateway made %d outbound installs and holds him: %v", n, gw.dev.HasPeer(bob.Key.Pub))
	}
	tl.say("gateway → bob (not installed, bob never called): peer found by address, installed, bob answered in %s; bob sent %s",
		answered, jitPlural(uint64(bobBind.InitSent.Load()), "initiation"))
	return nil
}

func jitPlural(n uint64, thing string) string {
	if n == 1 {
		return "1 " + thing
	}
	return fmt.Sprintf("%d %ss", n, thing)
}

// waitEvent waits for an event of kind, dropping others.
func waitEvent(ch <-chan hooks.PeerEvent, kind hooks.PeerEventKind, timeout time.Duration) bool {
	deadline := time.After(timeout)
	for {
		select {
		case ev := <-ch:
			if ev.Kind == kind {
				return true
			}
		case <-deadline:
			return false
		}
	}
}
