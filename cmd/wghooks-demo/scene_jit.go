package main

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	wgconn "golang.zx2c4.com/wireguard/conn"

	"wghooks/conn"
	"wghooks/device"
	"wghooks/hooks"
	"wghooks/hooks/sqlstore"
)

func init() {
	scenes = append(scenes, scene{order: 50, name: "jit", title: "Just-in-time peers: a gateway that knows no one until they knock", run: sceneJIT})
}

func sceneJIT(tl *timeline) error {
	dir, err := os.MkdirTemp("", "wghooks-demo-jit-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	store, err := sqlstore.Open(filepath.Join(dir, "peers.db"))
	if err != nil {
		return err
	}
	defer store.Close()

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
	stop, err := gw.serve("hello from a gateway that had never heard of you")
	if err != nil {
		return err
	}
	defer stop()
	tl.say("gateway up on udp 127.0.0.1:%d with an empty device and a SQLite store (%s)", gw.port, filepath.Base(store.Path()))

	// Alice keeps to plain WireGuard behaviour (no probe handshakes of
	// her own), so every initiation she sends is one the gateway needed.
	aliceBind := newJITCountBind()
	alice, err := startNode("alice", "198.18.1.1", [32]byte{}, 0, device.Config{Bind: aliceBind, HA: device.HAConfig{FlowEscapeOff: true}})
	if err != nil {
		return err
	}
	defer alice.dev.Close()
	if err := alice.addPeer(gw, true); err != nil {
		return err
	}
	if err := store.Put(context.Background(), sqlstore.Peer{
		PeerConfig: hooks.PeerConfig{PublicKey: alice.pub, AllowedIPs: []netip.Prefix{netip.PrefixFrom(alice.addr, 32)}},
		Comment:    "alice's laptop",
	}); err != nil {
		return err
	}
	n, _ := store.Count(context.Background())
	tl.say("alice's key is in the store (%d peer), not on the gateway: gateway holds %d peers", n, gw.dev.Stats().PeersActive)

	t0 := time.Now()
	body, err := alice.get(gw.addr, 10*time.Second)
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

	mallory, err := startNode("mallory", "198.18.1.66", [32]byte{}, 0, device.Config{})
	if err != nil {
		return err
	}
	defer mallory.dev.Close()
	if err := mallory.addPeer(gw, true); err != nil {
		return err
	}
	mallory.ping(gw.addr, 500*time.Millisecond)
	if waitEvent(seen, hooks.PeerRefused, 3*time.Second) {
		tl.say("mallory (key not in the store) knocked: refused, and remembered as unknown for a minute")
	}

	tl.say("alice goes quiet; the gateway evicts idle peers after 2s")
	if !waitEvent(seen, hooks.PeerEvicted, 10*time.Second) {
		return fmt.Errorf("alice was not evicted")
	}
	tl.say("alice evicted: gateway holds %d peers", gw.dev.Stats().PeersActive)

	if p := alice.dev.Upstream().LookupPeer(gw.pub); p != nil {
		p.ExpireCurrentKeypairs() // what alice's next rekey would do
	}
	t1 := time.Now()
	if _, err := alice.get(gw.addr, 10*time.Second); err != nil {
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
func startJITGateway(cfg device.Config, port uint16) (*node, *jitCountBind, error) {
	b := newJITCountBind()
	cfg.Bind = b
	gw, err := startNode("gateway", "198.18.0.1", jitGatewayKey, port, cfg)
	return gw, b, err
}

// jitGatewayKey is the gateway's private key, the same in every process.
var jitGatewayKey, _ = newKey()

// jitRestart stops the gateway and starts a new process with the same key,
// port, state file and store, and measures how soon alice's traffic flows
// again and who initiated. The new gateway is returned even with an error,
// for the caller to close.
func jitRestart(tl *timeline, gw *node, cfg device.Config, alice *node, aliceBind *jitCountBind) (*node, error) {
	port := gw.port
	gw.dev.Close()
	if alice.ping(gw.addr, 200*time.Millisecond) == nil {
		return nil, fmt.Errorf("a ping through the stopped gateway was answered")
	}
	saved, err := os.ReadFile(cfg.Restart.StateFile)
	if err != nil {
		return nil, fmt.Errorf("failed to read the gateway's state file: %w", err)
	}
	tl.say("gateway stopped; its state file marks %s as just in time; alice's ping goes unanswered",
		jitPlural(uint64(strings.Count(string(saved), `"jit": true`)), "peer"))
	aliceInits := aliceBind.inits.Load()
	t0 := time.Now()
	gw2, gwBind, err := startJITGateway(cfg, port)
	if err != nil {
		return nil, fmt.Errorf("failed to start the new gateway: %w", err)
	}
	tl.say("new gateway process up: same key, port %d, store and state file; no peers configured", gw2.port)
	if err := jitPingUntil(alice, gw2.addr, 10*time.Second); err != nil {
		return gw2, fmt.Errorf("alice's traffic after the restart: %w", err)
	}
	back := tl.since(t0)
	st := gw2.dev.Stats()
	tl.say("gateway restarted: alice's traffic back in %s; the gateway re-asked the store (%s) and sent %s (alice sent %d)",
		back, jitPlural(st.ProviderLookups, "lookup"), jitPlural(uint64(gwBind.inits.Load()), "initiation"), aliceBind.inits.Load()-aliceInits)
	return gw2, nil
}

// jitOutbound has the gateway reach bob first: bob is in the store with
// his endpoint, not on the gateway, and cannot call (he does not know
// where the gateway is).
func jitOutbound(tl *timeline, gw *node, store *sqlstore.Store) error {
	bobBind := newJITCountBind()
	bob, err := startNode("bob", "198.18.1.2", [32]byte{}, 0, device.Config{Bind: bobBind, HA: device.HAConfig{FlowEscapeOff: true}})
	if err != nil {
		return err
	}
	defer bob.dev.Close()
	if err := bob.addPeer(gw, false); err != nil {
		return err
	}
	if err := store.Put(context.Background(), sqlstore.Peer{
		PeerConfig: hooks.PeerConfig{
			PublicKey:  bob.pub,
			AllowedIPs: []netip.Prefix{netip.PrefixFrom(bob.addr, 32)},
			Endpoint:   netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), bob.port),
		},
		Comment: "bob's build server",
	}); err != nil {
		return err
	}
	tl.say("bob is in the store with his address and endpoint; he knows the gateway's key, not where it is")
	installs := gw.dev.Stats().OutboundInstalls
	t0 := time.Now()
	if err := jitPingUntil(gw, bob.addr, 10*time.Second); err != nil {
		return fmt.Errorf("the gateway's ping to bob: %w", err)
	}
	answered := tl.since(t0)
	if n := gw.dev.Stats().OutboundInstalls - installs; n != 1 || !gw.dev.HasPeer(bob.pub) {
		return fmt.Errorf("bob answered but the gateway made %d outbound installs and holds him: %v", n, gw.dev.HasPeer(bob.pub))
	}
	tl.say("gateway → bob (not installed, bob never called): peer found by address, installed, bob answered in %s; bob sent %s",
		answered, jitPlural(uint64(bobBind.inits.Load()), "initiation"))
	return nil
}

// jitPingUntil pings from n until a reply, for at most timeout.
func jitPingUntil(n *node, to netip.Addr, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if err := n.ping(to, 20*time.Millisecond); err == nil {
			return nil
		}
	}
	return fmt.Errorf("no reply within %v", timeout)
}

func jitPlural(n uint64, thing string) string {
	if n == 1 {
		return "1 " + thing
	}
	return fmt.Sprintf("%d %ss", n, thing)
}

// jitCountBind counts the handshake initiations its device sends.
type jitCountBind struct {
	wgconn.Bind
	inits atomic.Int64
}

func newJITCountBind() *jitCountBind { return &jitCountBind{Bind: wgconn.NewDefaultBind()} }

func (b *jitCountBind) Send(bufs [][]byte, ep wgconn.Endpoint) error {
	for _, buf := range bufs {
		if len(buf) == conn.MessageInitiationSize && buf[0] == conn.MessageInitiation {
			b.inits.Add(1)
		}
	}
	return b.Bind.Send(bufs, ep)
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
