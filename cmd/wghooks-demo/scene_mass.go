package main

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/wghooks/wghooks/device"
	"github.com/wghooks/wghooks/hooks"
	"github.com/wghooks/wghooks/hooks/sqlstore"
	"github.com/wghooks/wghooks/internal/testkit"
)

// massClients is how many clients knock at once; scenes_test.go lowers it
// under the race detector, which makes X25519 about ten times slower.
var massClients = 150

// massWait bounds each client's wait for its first answer.
const massWait = 15 * time.Second

// sceneMass: clients the gateway never saw, their keys in its SQLite
// store, all knock at once (a gateway restart or a failover sends them
// all to it); each comes from its own loopback address, as real clients
// come from their own.
func sceneMass(tl *timeline) error {
	if err := massCheckSources(); err != nil {
		return err
	}
	_, db, done, err := openTempStore("mass")
	if err != nil {
		return err
	}
	defer done()
	store := testkit.NewCountingStore(db)

	gw, err := startNode("gateway", "198.18.50.1", testkit.Keypair{}, 0, device.Config{
		JIT: device.JITConfig{Provider: store},
		HA:  device.HAConfig{FlowEscapeOff: true}, // a gateway keeps its port
	})
	if err != nil {
		return err
	}
	defer gw.dev.Close()
	stop, err := gw.ServeEcho()
	if err != nil {
		return err
	}
	defer stop()

	type client struct {
		*upstreamClient
		bind *testkit.CountingBind
	}
	cs := make([]client, massClients)
	var rows []sqlstore.Peer
	for i := range cs {
		b := testkit.NewCountingBind(testkit.NewSourceBind(massSource(i)))
		u, err := startUpstreamOn(fmt.Sprintf("198.18.%d.%d", 51+i/250, i%250+1), testkit.Keypair{}, 0, b)
		if err != nil {
			return err
		}
		defer u.dev.Close()
		cs[i] = client{u, b}
		if err := u.dev.IpcSet(testkit.PeerConf(gw.Node, true)); err != nil {
			return err
		}
		rows = append(rows, sqlstore.Peer{PeerConfig: hooks.PeerConfig{
			PublicKey: u.Key.Pub, AllowedIPs: []netip.Prefix{netip.PrefixFrom(u.Addr, 32)}}})
	}
	if err := db.Put(context.Background(), rows...); err != nil {
		return err
	}
	tl.say("gateway on udp 127.0.0.1:%d holds %d peers; its SQLite store lists %d clients (plain wireguard-go, each from its own address, 127.3.0.1 and up)",
		gw.Port, gw.dev.Stats().PeersActive, len(rows))

	start := time.Now()
	errs := make([]error, len(cs))
	var wg sync.WaitGroup
	for i, c := range cs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = c.Echo(gw.Addr, massWait)
		}()
	}
	tl.say("all %d clients send their first packet at once: each starts a handshake with a gateway that does not know it", len(cs))
	wg.Wait()
	took := tl.since(start)

	in, retransmitted, most := 0, 0, int64(0)
	for i, c := range cs {
		if errs[i] == nil && gw.dev.HasPeer(c.Key.Pub) {
			in++
		}
		n := c.bind.InitSent.Load()
		if n > 1 {
			retransmitted++
		}
		most = max(most, n)
	}
	single, batched, batches := store.Counts()
	resent := "no client needed a second initiation"
	if retransmitted > 0 {
		resent = fmt.Sprintf("%d retransmitted their initiation (upstream does after 5 s), the most any sent is %d", retransmitted, most)
	}
	tl.say("%d of %d clients in, each echo answered, all within %s; %s", in, len(cs), took, resent)
	tl.say("the SQLite store was asked in %s (%d keys), and for %s one by one; the gateway now holds %d peers",
		massBatches(batches), batched, jitPlural(uint64(single), "key"), gw.dev.Stats().PeersActive)
	tl.say("upstream has no store to ask: it would need all %d clients configured before they knock", len(cs))
	tl.record("clients", len(cs))
	tl.record("clients in", in)
	tl.record("most initiations by a client", int(most))
	tl.record("batches", batches)
	if in != len(cs) {
		return fmt.Errorf("%d of %d clients got in", in, len(cs))
	}
	return nil
}

func massBatches(n int) string {
	if n == 1 {
		return "1 batch"
	}
	return fmt.Sprintf("%d batches", n)
}

// massSource is client i's own loopback address.
func massSource(i int) netip.Addr { return netip.AddrFrom4([4]byte{127, 3, byte(i >> 8), byte(i + 1)}) }

// massCheckSources fails clearly where loopback is only 127.0.0.1 (macOS
// without aliases), rather than with a client's bind error.
func massCheckSources() error {
	c, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(massSource(0), 0)))
	if err != nil {
		return fmt.Errorf("the clients need addresses of their own on loopback (127.3.0.0/16): %w", err)
	}
	return c.Close()
}
