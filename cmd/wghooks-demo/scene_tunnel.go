package main

import (
	"fmt"
	"time"

	"github.com/wghooks/wghooks/device"
	"github.com/wghooks/wghooks/internal/testkit"
)

func sceneTunnel(tl *timeline) error {
	a, err := startNode("alice", "198.18.0.1", testkit.Keypair{}, 0, device.Config{})
	if err != nil {
		return err
	}
	defer a.dev.Close()
	b, err := startNode("bob", "198.18.0.2", testkit.Keypair{}, 0, device.Config{})
	if err != nil {
		return err
	}
	defer b.dev.Close()
	tl.say("alice up on udp 127.0.0.1:%d (tunnel %s), bob on udp 127.0.0.1:%d (tunnel %s)", a.Port, a.Addr, b.Port, b.Addr)
	if err := a.addPeer(b.Node, true); err != nil {
		return err
	}
	if err := b.addPeer(a.Node, true); err != nil {
		return err
	}
	tl.say("configured each other as peers over UAPI")
	stop, err := b.ServeHTTP("hello from bob, through WireGuard")
	if err != nil {
		return err
	}
	defer stop()
	t0 := time.Now()
	body, err := a.Get(b.Addr, 10*time.Second)
	if err != nil {
		return fmt.Errorf("HTTP through the tunnel: %w", err)
	}
	tl.say("alice fetched http://%s/ in %s: %q", b.Addr, tl.since(t0), body)
	st := a.dev.Stats()
	tl.say("alice's counters: %d handshake messages sent, %d received, %d B out, %d B in", st.HandshakesSent, st.HandshakesReceived, st.TxBytes, st.RxBytes)
	return nil
}
