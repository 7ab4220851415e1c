package main

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"time"

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
	gw, err := startNode("gateway", "198.18.0.1", [32]byte{}, 0, device.Config{JIT: device.JITConfig{
		Provider:    store,
		IdleTimeout: 2 * time.Second,
		OnPeerEvent: onEvent,
	}})
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
	alice, err := startNode("alice", "198.18.1.1", [32]byte{}, 0, device.Config{HA: device.HAConfig{FlowEscapeOff: true}})
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
	return nil
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
