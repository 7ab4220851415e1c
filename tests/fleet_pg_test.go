package tests

// A fleet of gateways on one PostgreSQL store (hooks/pgstore): peers
// added with the CLI are served by whichever gateway a client reaches,
// removals are cut on every gateway, the store going down fails closed
// for new keys and leaves installed peers alone, and what changed while
// a gateway was away is applied when it is back.

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/wghooks/wghooks/hooks"
	"github.com/wghooks/wghooks/internal/testkit"
)

// TestFleetPGAddServedRemoveCutEverywhere: a key added with the CLI is
// served, with one initiation, by each of three gateways its clients
// reach; removed with the CLI, it is cut on all three (gone from UAPI
// get, the clients' next packets unanswered).
func TestFleetPGAddServedRemoveCutEverywhere(t *testing.T) {
	testkit.CheckLeaks(t)
	f := newFleet(t, 3)
	k := testkit.NewKeypair()
	other := testkit.NewKeypair()
	f.cli(t, "add", "wg0", b64(k.Pub), "allowed-ips", "198.18.1.2/32")
	f.cli(t, "add", "wg0", b64(other.Pub), "allowed-ips", "198.18.1.3/32")

	var clients []*jitClient
	for _, g := range f.gws {
		c := fleetClient(t, k, "198.18.1.2", g)
		if err := c.Echo(g.Addr, 10*time.Second); err != nil {
			t.Fatalf("first contact through a gateway: %v (client sent %d initiations)", err, c.bind.InitSent.Load())
		}
		if n := c.bind.InitSent.Load(); n != 1 {
			t.Errorf("client sent %d initiations; want 1 (served without a retransmit)", n)
		}
		clients = append(clients, c)
	}
	// A second key on gateway 1 stays through the removal of the first.
	o := fleetClient(t, other, "198.18.1.3", f.gws[0])
	if err := o.Echo(f.gws[0].Addr, 10*time.Second); err != nil {
		t.Fatal(err)
	}

	out := f.cli(t, "remove", "wg0", b64(k.Pub))
	if !strings.Contains(out, "every gateway") {
		t.Fatalf("remove said %q", out)
	}
	for i, g := range f.gws {
		testkit.Eventually(t, 10*time.Second, "removed peer gone from a gateway", func() bool { return !g.holds(t, k.Pub) })
		if err := clients[i].Echo(g.Addr, 2*time.Second); err == nil {
			t.Fatalf("gateway %d still answers a removed key", i+1)
		}
		if g.ev.count(hooks.PeerRevoked, k.Pub) != 1 {
			t.Errorf("gateway %d: %d revocations of the removed key; want 1", i+1, g.ev.count(hooks.PeerRevoked, k.Pub))
		}
	}
	if err := o.Echo(f.gws[0].Addr, 5*time.Second); err != nil || !f.gws[0].holds(t, other.Pub) {
		t.Fatalf("the other key was cut too: %v", err)
	}
}

// TestFleetPGStoreDown: PostgreSQL stopped with `pg_ctl stop -m
// immediate` while clients are connected: they keep working, an unknown
// key is refused at once; a removal made right after the server is back
// (while the gateways still wait to reconnect) is applied when they do.
func TestFleetPGStoreDown(t *testing.T) {
	testkit.CheckLeaks(t)
	f := newFleet(t, 2)
	k1, k2, k3 := testkit.NewKeypair(), testkit.NewKeypair(), testkit.NewKeypair()
	f.cli(t, "add", "wg0", b64(k1.Pub), "allowed-ips", "198.18.1.2/32")
	f.cli(t, "add", "wg0", b64(k2.Pub), "allowed-ips", "198.18.1.3/32")
	c1 := fleetClient(t, k1, "198.18.1.2", f.gws[0])
	c2 := fleetClient(t, k2, "198.18.1.3", f.gws[1])
	for i, c := range []*jitClient{c1, c2} {
		if err := c.Echo(f.gws[i].Addr, 10*time.Second); err != nil {
			t.Fatal(err)
		}
	}

	if err := f.srv.Crash(); err != nil {
		t.Fatal(err)
	}
	for _, g := range f.gws {
		testkit.Eventually(t, 10*time.Second, "gateway sees the store down", g.store.Down)
		g.log.WaitFor(t, "down, refusing unknown keys", 5*time.Second)
	}
	// Installed peers keep working; a new session too (no lookup).
	for i, c := range []*jitClient{c1, c2} {
		c.rehandshake(f.gws[i].Node)
		if err := c.Echo(f.gws[i].Addr, 10*time.Second); err != nil {
			t.Fatalf("installed client %d stopped working while the store is down: %v", i+1, err)
		}
	}
	// An unknown key is refused, failing fast (not after the lookup
	// timeout), with the store's down line.
	c3 := fleetClient(t, k3, "198.18.1.4", f.gws[0])
	if err := c3.Echo(f.gws[0].Addr, 2*time.Second); err == nil {
		t.Fatal("a key not installed was served while the store is down")
	}
	testkit.Eventually(t, 5*time.Second, "lookup failed", func() bool { return f.gws[0].ev.count(hooks.PeerLookupFailed, k3.Pub) > 0 })
	if ev, _, _ := f.gws[0].ev.find(hooks.PeerLookupFailed, k3.Pub); !strings.Contains(ev.Err.Error(), "refusing unknown keys") {
		t.Errorf("lookup failed with %v; want the store's fail-fast error", ev.Err)
	}

	// Back: k1 removed at once, before the gateways reconnect (their
	// backoff has grown while the server was down).
	if err := f.srv.Start(); err != nil {
		t.Fatal(err)
	}
	f.cli(t, "remove", "wg0", b64(k1.Pub))
	testkit.Eventually(t, 15*time.Second, "removal made while away applied on reconnect", func() bool { return !f.gws[0].holds(t, k1.Pub) })
	if err := c1.Echo(f.gws[0].Addr, 2*time.Second); err == nil {
		t.Fatal("removed key still answered")
	}
	if err := c2.Echo(f.gws[1].Addr, 5*time.Second); err != nil || !f.gws[1].holds(t, k2.Pub) {
		t.Fatalf("the other gateway's client lost: %v", err)
	}
	// And new keys are served again.
	f.cli(t, "add", "wg0", b64(k3.Pub), "allowed-ips", "198.18.1.4/32")
	c3b := fleetClient(t, k3, "198.18.1.4", f.gws[1])
	if err := c3b.Echo(f.gws[1].Addr, 10*time.Second); err != nil {
		t.Fatalf("a key added after the outage: %v", err)
	}
}

// TestFleetPGBadInput: a notification naming a key no gateway holds
// changes nothing; a malformed row written by hand for an installed key
// keeps the peer as it was (an error, not a revocation) and is logged; a
// change made while only the gateway's watch connection was cut is
// applied when it reconnects.
func TestFleetPGBadInput(t *testing.T) {
	f := newFleet(t, 1)
	g := f.gws[0]
	k := testkit.NewKeypair()
	f.cli(t, "add", "wg0", b64(k.Pub), "allowed-ips", "198.18.1.2/32")
	c := fleetClient(t, k, "198.18.1.2", g)
	if err := c.Echo(g.Addr, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	db, err := pgx.Connect(ctx, f.url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close(ctx)
	exec := func(sql string, args ...any) {
		t.Helper()
		if _, err := db.Exec(ctx, sql, args...); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}

	// A key the gateway does not hold.
	stranger := testkit.NewKeypair()
	exec(`INSERT INTO wghooks_peers (public_key, allowed_ips) VALUES ($1, '198.18.1.9/32')`, stranger.Pub[:])
	exec(`DELETE FROM wghooks_peers WHERE public_key = $1`, stranger.Pub[:])
	// A malformed row for the installed key.
	exec(`UPDATE wghooks_peers SET allowed_ips = 'not-an-ip' WHERE public_key = $1`, k.Pub[:])
	g.log.WaitFor(t, `"not-an-ip"`, 10*time.Second)
	if !g.holds(t, k.Pub) || g.holds(t, stranger.Pub) || testkit.PeerValue(t, g.dev, k.Pub, "allowed_ip") != "198.18.1.2/32" {
		t.Fatalf("bad rows changed the gateway's peers:\n%s", mustGet(t, g))
	}
	if err := c.Echo(g.Addr, 5*time.Second); err != nil {
		t.Fatalf("installed peer stopped working over a malformed row: %v", err)
	}
	if g.ev.count(hooks.PeerRevoked, k.Pub) != 0 {
		t.Fatal("a malformed row revoked the peer")
	}

	// A fixed row with new addresses is applied as a first install would.
	exec(`UPDATE wghooks_peers SET allowed_ips = '198.18.1.2/32,198.18.1.20/32' WHERE public_key = $1`, k.Pub[:])
	testkit.Eventually(t, 10*time.Second, "changed row applied", func() bool {
		return strings.Contains(mustGet(t, g), "allowed_ip=198.18.1.20/32")
	})

	// The watch connection cut, a change made: applied on reconnect.
	exec(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'wghooks watch'`)
	exec(`UPDATE wghooks_peers SET enabled = false WHERE public_key = $1`, k.Pub[:])
	testkit.Eventually(t, 15*time.Second, "disabled while the watch was cut: cut", func() bool { return !g.holds(t, k.Pub) })
	if _, err := g.store.LookupPeer(ctx, hooks.PublicKey(k.Pub)); !errors.Is(err, hooks.ErrUnknownPeer) {
		t.Fatalf("disabled key looked up: %v", err)
	}
}

func mustGet(t testing.TB, g *fleetGateway) string {
	get, err := g.dev.IpcGet()
	if err != nil {
		t.Fatal(err)
	}
	return get
}

// TestFleetPGAddClearsRefusal: a key a gateway refused a moment ago (its
// negative cache says "unknown" for a minute) is served as soon as it is
// added to the store: the pushed change clears the refusal on every
// gateway, not only on the one the CLI runs beside.
func TestFleetPGAddClearsRefusal(t *testing.T) {
	f := newFleet(t, 2)
	k := testkit.NewKeypair()
	for _, g := range f.gws {
		s := newJITSender(t, g.Node)
		s.send(t, s.initiation(t, k))
		testkit.Eventually(t, 10*time.Second, "refused before it is added", func() bool { return g.ev.count(hooks.PeerRefused, k.Pub) > 0 })
	}
	f.cli(t, "add", "wg0", b64(k.Pub), "allowed-ips", "198.18.1.2/32")
	for _, g := range f.gws {
		testkit.Eventually(t, 10*time.Second, "served after the add, within the negative cache's minute", func() bool {
			s := newJITSender(t, g.Node) // a new source port: decoded at once
			s.send(t, s.initiation(t, k))
			return testkit.Poll(time.Second, func() bool { return g.holds(t, k.Pub) })
		})
	}
}
