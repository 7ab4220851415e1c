package tests

// State handed across machines: gateways sharing a peer store write what
// they learned to it, and a replacement gateway (same key, the address
// moved to it, no state file of its own) started with Takeover sends one
// initiation to each recently active client, so roaming clients are back
// in one round trip with no change on their side. Here in process on
// loopback (the replacement binds the old one's port: the address clients
// use moved to it); fleet_state_netns_test.go moves a real address between
// namespaces. The clients are plain upstream and never touched.

import (
	"cmp"
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wghooks/wghooks/device"
	"github.com/wghooks/wghooks/hooks"
	"github.com/wghooks/wghooks/hooks/sqlstore"
	"github.com/wghooks/wghooks/internal/testkit"
)

const fleetGatewayAddr = "198.18.10.1"

// fleetConn is one machine's connection to the fleet's shared store,
// SQLite or PostgreSQL, as a gateway uses it.
type fleetConn interface {
	hooks.Provider
	hooks.BatchProvider
	hooks.AddrProvider
	hooks.StateStore
}

// fleetShared is the store a fleet's gateways share.
type fleetShared struct {
	db    string    // as WGHOOKS_PEER_DB names it
	admin fleetConn // the operator's connection
	// put adds peers through admin.
	put func(ctx context.Context, peers []hooks.PeerConfig) error
	// open opens a gateway machine's own connection, closed at cleanup.
	open func(tb testing.TB) fleetConn
}

// newSQLiteFleet is a shared SQLite file in tb's temp dir.
func newSQLiteFleet(tb testing.TB) fleetShared {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "fleet.db")
	open := func(tb testing.TB) *sqlstore.Store {
		tb.Helper()
		s, err := sqlstore.Open(path)
		if err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(func() { s.Close() })
		return s
	}
	admin := open(tb)
	return fleetShared{db: path, admin: admin, put: sqlitePeerStore(admin).Put,
		open: func(tb testing.TB) fleetConn { return open(tb) }}
}

// fleetStore is one gateway's connection to the shared store, counting
// the takeover's reads.
type fleetStore struct {
	fleetConn
	loads atomic.Int32
}

func (s *fleetStore) LoadPeerState(ctx context.Context, gateway hooks.PublicKey, since time.Time, limit int) ([]hooks.PeerState, error) {
	s.loads.Add(1)
	return s.fleetConn.LoadPeerState(ctx, gateway, since, limit)
}

// fleetRig is a fleet of one gateway key: the shared store, the
// gateway's key and port, and roaming clients (no endpoint configured on
// the gateway side): just-in-time peers of the store, and optionally
// static ones every gateway configures.
type fleetRig struct {
	shared  fleetShared
	key     testkit.Keypair
	port    uint16
	clients []*restartClient
	static  string // the gateways' static peers, UAPI text
	// storeInterval is the gateways' StoreInterval; 0: 100 ms.
	storeInterval time.Duration
}

// newFleetRig is a fleet on a shared SQLite file.
func newFleetRig(tb testing.TB, clients int) *fleetRig {
	tb.Helper()
	return newFleetRigOn(tb, newSQLiteFleet(tb), clients)
}

// newFleetRigOn is a fleet on shared.
func newFleetRigOn(tb testing.TB, shared fleetShared, clients int) *fleetRig {
	tb.Helper()
	r := &fleetRig{shared: shared, key: testkit.NewKeypair(), port: testkit.FreeUDPPort(tb)}
	for i := 0; i < clients; i++ {
		r.addClient(tb, i)
	}
	return r
}

// addClient adds client i, a just-in-time peer of the store.
func (r *fleetRig) addClient(tb testing.TB, i int) *restartClient {
	tb.Helper()
	c := r.newClient(tb, i)
	if err := r.shared.put(context.Background(), []hooks.PeerConfig{{
		PublicKey: c.Key.Pub, AllowedIPs: []netip.Prefix{netip.PrefixFrom(c.Addr, 32)},
	}}); err != nil {
		tb.Fatal(err)
	}
	return c
}

// addStaticClient adds client i, a static peer of every gateway, without
// an endpoint: it roams.
func (r *fleetRig) addStaticClient(tb testing.TB, i int) *restartClient {
	tb.Helper()
	c := r.newClient(tb, i)
	r.static += testkit.PeerConf(&c.Node, false)
	return c
}

func (r *fleetRig) newClient(tb testing.TB, i int) *restartClient {
	tb.Helper()
	c := newRestartClient(tb, fmt.Sprintf("198.18.10.%d", i+2))
	gw := &testkit.Node{Key: r.key, Addr: netip.MustParseAddr(fleetGatewayAddr)}
	if err := c.dev.IpcSet(restartClientPeerConf(gw, r.port, 0)); err != nil {
		tb.Fatal(err)
	}
	r.clients = append(r.clients, c)
	return c
}

// gateway starts one gateway machine: its own store connection and state
// file (a new machine has none), the shared key and port.
func (r *fleetRig) gateway(tb testing.TB, takeover bool) (*restartServer, *fleetStore) {
	tb.Helper()
	return r.gatewayWithState(tb, takeover, filepath.Join(tb.TempDir(), "wg0.json"))
}

// gatewayWithState is gateway with the state file at statePath (which
// may exist: a machine restored from an image).
func (r *fleetRig) gatewayWithState(tb testing.TB, takeover bool, statePath string) (*restartServer, *fleetStore) {
	tb.Helper()
	st := &fleetStore{fleetConn: r.shared.open(tb)}
	cfg := device.Config{
		JIT: device.JITConfig{Provider: st},
		Restart: device.RestartConfig{
			StateFile:     statePath,
			StoreInterval: cmp.Or(r.storeInterval, 100*time.Millisecond),
			Takeover:      takeover,
		},
	}
	cfg.HA.FlowEscapeOff = true
	return startRestartServer(tb, r.key, fleetGatewayAddr, r.port, r.static, cfg, restartDaemonFlow), st
}

// firstGateway runs the first gateway until every client made first
// contact and the store lists them all, then stops it (the machine is
// gone); it returns the clients' handshake counts at that point.
func (r *fleetRig) firstGateway(tb testing.TB) (initSent, initRecv []int64) {
	tb.Helper()
	a, _ := r.gateway(tb, false)
	for _, c := range r.clients {
		restartJITFirstContact(tb, c, a)
	}
	testkit.Eventually(tb, 10*time.Second, "the store to list every client", func() bool {
		states, err := r.shared.admin.LoadPeerState(context.Background(), r.key.Pub, time.Now().Add(-time.Minute), 100)
		return err == nil && len(states) == len(r.clients)
	})
	a.close()
	for _, c := range r.clients {
		initSent = append(initSent, c.bind.InitSent.Load())
		initRecv = append(initRecv, c.bind.InitRecv.Load())
	}
	return initSent, initRecv
}

// A replacement gateway with Takeover brings every idle roaming client
// back with exactly one initiation each, just-in-time peers and a static
// peer without an endpoint alike; the clients send none and keep their
// configuration, and traffic flows again.
func TestFleetStateTakeover(t *testing.T) {
	testkit.CheckLeaks(t)
	r := newFleetRig(t, 3)
	static := r.addStaticClient(t, 3)
	sent0, recv0 := r.firstGateway(t)

	switched := time.Now()
	b, st := r.gateway(t, true)
	for i, c := range r.clients {
		testkit.Eventually(t, 10*time.Second, fmt.Sprintf("client %d to complete a handshake with the replacement", i), func() bool {
			return fleetLastHandshake(c, r.key).After(switched)
		})
		// Echoes until one is answered: a netstack ping socket now and
		// then misses a reply the tunnel delivered.
		if _, err := c.PingUntil(b.Addr, time.Second, 10*time.Second); err != nil {
			t.Fatalf("client %d: no traffic through the replacement: %v\n%s", i, err, b.log)
		}
	}
	for i, c := range r.clients {
		if got, sent := c.bind.InitRecv.Load()-recv0[i], c.bind.InitSent.Load()-sent0[i]; got != 1 || sent != 0 {
			t.Errorf("client %d: %d initiations from the replacement and %d of its own, want exactly 1 and 0", i, got, sent)
		}
	}
	if n := b.bind.InitSent.Load(); n != int64(len(r.clients)) {
		t.Errorf("the replacement sent %d initiations, want %d (one per client)", n, len(r.clients))
	}
	if st.loads.Load() != 1 {
		t.Errorf("the replacement read the store %d times, want once", st.loads.Load())
	}
	for _, want := range []string{"takeover: 4 peers of the fleet's store", "the fleet's state store: restored 1 learned endpoints", "restored 3 just-in-time peers"} {
		if !strings.Contains(b.log.String(), want) {
			t.Errorf("no %q in the log:\n%s", want, b.log)
		}
	}
	if !b.ours.HasPeer(static.Key.Pub) {
		t.Error("the static client is not a peer of the replacement")
	}
}

// With Takeover off (the default) a replacement reads nothing from the
// store, installs nothing and sends nothing: its clients come back only
// on their own.
func TestFleetStateTakeoverOff(t *testing.T) {
	testkit.CheckLeaks(t)
	r := newFleetRig(t, 2)
	r.firstGateway(t)

	b, st := r.gateway(t, false)
	// The restore ran in Up, which startRestartServer waited for.
	if n := st.loads.Load(); n != 0 {
		t.Errorf("the replacement read the store %d times, want never", n)
	}
	if n := b.bind.InitSent.Load(); n != 0 {
		t.Errorf("the replacement sent %d initiations, want none", n)
	}
	for i, c := range r.clients {
		if b.ours.HasPeer(c.Key.Pub) {
			t.Errorf("the replacement holds client %d, want no peer", i)
		}
	}
	// The store still serves a client that knocks by itself.
	c := r.clients[0]
	if peer := c.dev.LookupPeer(r.key.Pub); peer != nil {
		peer.ExpireCurrentKeypairs()
	}
	if _, err := c.PingUntil(b.Addr, time.Second, 10*time.Second); err != nil {
		t.Fatalf("a client that knocks was not served: %v", err)
	}
}

// fleetLastHandshake is the client's last completed handshake with the
// gateway key: for a responder, when the first packet on the new session
// arrived.
func fleetLastHandshake(c *restartClient, gw testkit.Keypair) time.Time {
	get, err := c.dev.IpcGet()
	if err != nil {
		return time.Time{}
	}
	var sec, nsec int64
	fmt.Sscan(testkit.PeerValueOf(get, gw.Pub, "last_handshake_time_sec"), &sec)
	fmt.Sscan(testkit.PeerValueOf(get, gw.Pub, "last_handshake_time_nsec"), &nsec)
	if sec == 0 && nsec == 0 {
		return time.Time{}
	}
	return time.Unix(sec, nsec)
}

// With no periodic saves, a drain writes what the gateway learned to the
// store: a planned replacement starts from it.
func TestFleetStateSavedOnDrain(t *testing.T) {
	testkit.CheckLeaks(t)
	r := newFleetRig(t, 2)
	r.storeInterval = -1
	a, _ := r.gateway(t, false)
	for _, c := range r.clients {
		restartJITFirstContact(t, c, a)
	}
	ctx := context.Background()
	if states, err := r.shared.admin.LoadPeerState(ctx, r.key.Pub, time.Time{}, 100); err != nil || len(states) != 0 {
		t.Fatalf("before the drain the store holds %v (%v), want nothing", states, err)
	}
	if err := a.ours.DrainPeers(); err != nil {
		t.Fatal(err)
	}
	states, err := r.shared.admin.LoadPeerState(ctx, r.key.Pub, time.Time{}, 100)
	if err != nil || len(states) != len(r.clients) {
		t.Fatalf("after the drain the store holds %v (%v), want both clients", states, err)
	}
	for _, st := range states {
		if !st.Endpoint.Addr().IsLoopback() || st.LastHandshake.IsZero() {
			t.Errorf("saved state %+v, want a loopback endpoint and a handshake", st)
		}
	}
}

// State written under another gateway key is never taken over: a second
// fleet (another key) shares the store, and a replacement of the first
// fleet sends one initiation to each of its own clients and none to the
// other fleet's, which the store also serves; a machine started with a
// third key (misconfigured) and Takeover sends none at all.
func TestFleetStateTakeoverForeignKeyIgnored(t *testing.T) {
	testkit.CheckLeaks(t)
	r := newFleetRig(t, 2)
	other := newFleetRigOn(t, r.shared, 0)
	for i := 0; i < 2; i++ {
		other.addClient(t, 10+i) // tunnel addresses apart from r's
	}
	sent0, recv0 := r.firstGateway(t)
	otherSent0, otherRecv0 := other.firstGateway(t)

	b, _ := r.gateway(t, true)
	for i, c := range r.clients {
		if _, err := c.PingUntil(b.Addr, time.Second, 10*time.Second); err != nil {
			t.Fatalf("client %d: no traffic through the replacement: %v\n%s", i, err, b.log)
		}
		if got, sent := c.bind.InitRecv.Load()-recv0[i], c.bind.InitSent.Load()-sent0[i]; got != 1 || sent != 0 {
			t.Errorf("client %d: %d initiations from the replacement and %d of its own, want exactly 1 and 0", i, got, sent)
		}
	}
	if n := b.bind.InitSent.Load(); n != int64(len(r.clients)) {
		t.Errorf("the replacement sent %d initiations, want %d (its own fleet's clients only)\n%s", n, len(r.clients), b.log)
	}
	for i, c := range other.clients {
		if got := c.bind.InitRecv.Load() - otherRecv0[i]; got != 0 {
			t.Errorf("the other fleet's client %d got %d initiations from the replacement, want none", i, got)
		}
		if b.ours.HasPeer(c.Key.Pub) {
			t.Errorf("the replacement installed the other fleet's client %d", i)
		}
	}

	// A machine with a key of its own shares the store: nothing to take
	// over, no initiation sent.
	stray := newFleetRigOn(t, r.shared, 0)
	s, st := stray.gateway(t, true)
	if n := st.loads.Load(); n != 1 {
		t.Errorf("the stray gateway read the store %d times, want once", n)
	}
	if n := s.bind.InitSent.Load(); n != 0 {
		t.Errorf("the stray gateway sent %d initiations, want none", n)
	}
	if !strings.Contains(s.log.String(), "no peer of the fleet's store had a handshake with this gateway's key") {
		t.Errorf("the stray gateway's log does not say it found nothing under its key:\n%s", s.log)
	}
	for i, c := range other.clients {
		if got, sent := c.bind.InitRecv.Load()-otherRecv0[i], c.bind.InitSent.Load()-otherSent0[i]; got != 0 || sent != 0 {
			t.Errorf("the other fleet's client %d: %d initiations received and %d sent, want none", i, got, sent)
		}
	}
}

// A machine restored from an image carries a state file of its own, but
// an unusable one: written long before the takeover window (listing the
// clients at endpoints they left long ago), or for another private key.
// With Takeover it counts as missing: the replacement takes over the
// fleet's state and brings every client back with one initiation.
func TestFleetStateTakeoverStaleStateFile(t *testing.T) {
	for _, tc := range []struct {
		name    string
		key     func(r *fleetRig) [32]byte
		written time.Duration // before now
		log     string
	}{
		{"old image", func(r *fleetRig) [32]byte { return r.key.Pub }, 6 * time.Hour, "more than the takeover window"},
		{"another key", func(*fleetRig) [32]byte { return testkit.NewKeypair().Pub }, time.Minute, "written for another private key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			testkit.CheckLeaks(t)
			r := newFleetRig(t, 2)
			sent0, recv0 := r.firstGateway(t)

			// What the image's file says: the clients at a port where
			// nothing listens now.
			written := time.Now().Add(-tc.written).UTC()
			var entries []string
			for _, c := range r.clients {
				entries = append(entries, fmt.Sprintf(`{"public_key":%q,"endpoint":"127.0.0.1:9","last_handshake":%q}`,
					hooks.PublicKey(c.Key.Pub).String(), written.Add(-time.Minute).Format(time.RFC3339Nano)))
			}
			statePath := filepath.Join(t.TempDir(), "wg0.json")
			file := fmt.Sprintf(`{"version":1,"public_key":%q,"written":%q,"peers":[%s],"sections":{"jit":{"peers":[%s]}}}`,
				hooks.PublicKey(tc.key(r)).String(), written.Format(time.RFC3339Nano), strings.Join(entries, ","), strings.Join(entries, ","))
			if err := os.WriteFile(statePath, []byte(file), 0o600); err != nil {
				t.Fatal(err)
			}

			b, st := r.gatewayWithState(t, true, statePath)
			for i, c := range r.clients {
				if _, err := c.PingUntil(b.Addr, time.Second, 10*time.Second); err != nil {
					t.Fatalf("client %d: no traffic through the replacement: %v\n%s", i, err, b.log)
				}
				if got, sent := c.bind.InitRecv.Load()-recv0[i], c.bind.InitSent.Load()-sent0[i]; got != 1 || sent != 0 {
					t.Errorf("client %d: %d initiations from the replacement and %d of its own, want exactly 1 and 0", i, got, sent)
				}
			}
			if n := st.loads.Load(); n != 1 {
				t.Errorf("the replacement read the store %d times, want once", n)
			}
			for _, want := range []string{tc.log, "takeover: 2 peers of the fleet's store", "restored 2 just-in-time peers"} {
				if strings.Count(b.log.String(), want) != 1 {
					t.Errorf("want %q once in the log:\n%s", want, b.log)
				}
			}
			// Another key's file is kept aside for the operator, as a
			// rejected one is.
			if _, err := os.Stat(statePath + ".rejected"); (err == nil) != (tc.name == "another key") {
				t.Errorf("%s.rejected: %v", statePath, err)
			}
		})
	}
}
