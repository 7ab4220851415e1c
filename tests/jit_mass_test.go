package tests

import (
	"context"
	"fmt"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/wghooks/wghooks/device"
	"github.com/wghooks/wghooks/hooks"
	"github.com/wghooks/wghooks/internal/testkit"
)

// TestJITMassArrival: hundreds of clients the gateway has never seen
// knock at once (a gateway restart, a backend failover), each from its
// own address, their keys in the SQLite store; with the default settings
// every one gets in and none sends more than two initiations (at most
// one retransmit), and the store was asked in batches. Under the race
// detector 64 clients knock (see testkit.RaceEnabled).
func TestJITMassArrival(t *testing.T) {
	jitMassArrival(t, newBenchSQLiteStore)
}

// jitMassArrival runs the mass arrival on the store newStore opens (a
// BatchProvider).
func jitMassArrival(t *testing.T, newStore func(testing.TB) benchPeerStore) {
	clients := 200
	if testkit.RaceEnabled {
		clients = 64
	}
	testkit.CheckLeaks(t)
	store := newStore(t)
	batch, ok := store.Provider.(interface {
		hooks.Provider
		hooks.BatchProvider
	})
	if !ok {
		t.Fatalf("%T does not answer in batches", store.Provider)
	}
	prov := testkit.NewCountingStore(batch)
	server, sd := newJITServer(t, prov, device.JITConfig{}, nil, nil)

	type client struct {
		node *testkit.Node
		bind *testkit.CountingBind
	}
	cs := make([]client, clients)
	var peers []hooks.PeerConfig
	for i := range cs {
		bind := testkit.NewCountingBind(testkit.NewSourceBind(netip.AddrFrom4([4]byte{127, 3, byte(i >> 8), byte(i + 1)})))
		n, d, err := testkit.StartUpstream(fmt.Sprintf("198.18.%d.%d", 8+i/250, i%250+1), testkit.Keypair{}, 0, bind, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(d.Close)
		testkit.AddPeer(t, d, server, true)
		cs[i] = client{n, bind}
		peers = append(peers, hooks.PeerConfig{
			PublicKey: n.Key.Pub, AllowedIPs: []netip.Prefix{netip.PrefixFrom(n.Addr, 32)}})
	}
	if err := store.Put(context.Background(), peers); err != nil {
		t.Fatal(err)
	}

	// All at once: each client's first packet starts its handshake.
	start := time.Now()
	errs := make([]error, clients)
	var wg sync.WaitGroup
	for i, c := range cs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = c.node.Echo(server.Addr, 30*time.Second)
		}()
	}
	wg.Wait()
	took := time.Since(start)
	retransmitted, cookies := 0, int64(0)
	for i, c := range cs {
		if errs[i] != nil {
			t.Errorf("client %d: no echo through the gateway: %v (%d initiations sent)", i, errs[i], c.bind.InitSent.Load())
		}
		cookies += c.bind.CookieRecv.Load()
		if c.bind.InitSent.Load() > 1 {
			retransmitted++
		}
		if n := c.bind.InitSent.Load(); n > 2 {
			t.Errorf("client %d sent %d initiations, want at most 2 (one retransmit)", i, n)
		}
		if !sd.HasPeer(c.node.Key.Pub) {
			t.Errorf("client %d not installed", i)
		}
	}
	single, batched, batches := prov.Counts()
	t.Logf("%d clients in %v, %d retransmitted, %d cookie replies; store asked %d keys one by one and %d in %d batches",
		clients, took.Round(time.Millisecond), retransmitted, cookies, single, batched, batches)
	st := sd.Stats()
	t.Logf("gateway: %d handshakes received, %d misses, %d lookups refused by the budget, %d guarded, %d cookies",
		st.HandshakesReceived, st.PeerMisses, st.LookupsRefused, st.HandshakesGuarded, st.CookiesSent)
	if batches == 0 {
		t.Errorf("the store was never asked for a batch (%d lookups one by one)", single)
	}
}
