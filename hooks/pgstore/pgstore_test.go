package pgstore_test

import (
	"context"
	"errors"
	"net/netip"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/wghooks/wghooks/hooks"
	"github.com/wghooks/wghooks/hooks/pgstore"
	"github.com/wghooks/wghooks/internal/pgtest"
	"github.com/wghooks/wghooks/internal/testkit"
)

// newStore starts a server, migrates it and opens a store on it.
func newStore(t *testing.T) (*pgtest.Server, *pgstore.Store) {
	t.Helper()
	srv := pgtest.New(t)
	url := srv.URL("postgres")
	if _, err := pgstore.Migrate(context.Background(), url); err != nil {
		t.Fatal(err)
	}
	s, err := pgstore.Open(context.Background(), pgstore.Config{URL: url, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return srv, s
}

func key(t *testing.T) hooks.PublicKey { return hooks.PublicKey(testkit.NewKeypair().Pub) }

func peer(k hooks.PublicKey, ips string) pgstore.Peer {
	var ps []netip.Prefix
	for _, f := range strings.Split(ips, ",") {
		ps = append(ps, netip.MustParsePrefix(f))
	}
	return pgstore.Peer{PeerConfig: hooks.PeerConfig{PublicKey: k, AllowedIPs: ps}}
}

// sql runs statements on the store's database directly, as an operator
// with psql would.
func sql(t *testing.T, srv *pgtest.Server, stmts ...string) {
	t.Helper()
	sqlOn(t, srv, "postgres", stmts...)
}

func sqlOn(t *testing.T, srv *pgtest.Server, db string, stmts ...string) {
	t.Helper()
	c, err := pgx.Connect(context.Background(), srv.URL(db))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(context.Background())
	for _, s := range stmts {
		if _, err := c.Exec(context.Background(), s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}

// TestMigrateOnceAndSchemaChecked: migrate applies each version once;
// a database without the schema is refused with what to do.
func TestMigrateOnceAndSchemaChecked(t *testing.T) {
	srv := pgtest.New(t)
	url := srv.URL("postgres")
	_, err := pgstore.Open(context.Background(), pgstore.Config{URL: url})
	if !errors.Is(err, pgstore.ErrNoSchema) || !strings.Contains(err.Error(), "wghooks peers migrate") {
		t.Fatalf("open without schema: %v; want ErrNoSchema saying to migrate", err)
	}
	v, err := pgstore.Migrate(context.Background(), url)
	if err != nil || len(v) != pgstore.SchemaVersion {
		t.Fatalf("first migrate: %v, %v", v, err)
	}
	v, err = pgstore.Migrate(context.Background(), url)
	if err != nil || len(v) != 0 {
		t.Fatalf("second migrate applied %v, %v; want nothing", v, err)
	}
	s, err := pgstore.Open(context.Background(), pgstore.Config{URL: url})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	sql(t, srv, `INSERT INTO wghooks_schema_version (version) VALUES (999)`)
	if _, err := pgstore.Open(context.Background(), pgstore.Config{URL: url}); !errors.Is(err, pgstore.ErrNoSchema) || !strings.Contains(err.Error(), "upgrade wghooks") {
		t.Fatalf("open a newer schema: %v", err)
	}
}

// TestURLRedacted: a URL that does not parse is refused without its
// password.
func TestURLRedacted(t *testing.T) {
	for _, u := range []string{
		"postgres://wg:s3cretpw@db.example:notaport/peers",
		"postgres://wg:s3cretpw@db.example/peers?sslmode=bogus",
		"postgresql://wg@db.example/peers?password=s3cretpw&connect_timeout=x",
		"mysql://wg:s3cretpw@db/peers",
	} {
		_, err := pgstore.Open(context.Background(), pgstore.Config{URL: u})
		if err == nil {
			t.Fatalf("%s: opened", u)
		}
		if strings.Contains(err.Error(), "s3cretpw") {
			t.Fatalf("error carries the password: %v", err)
		}
		t.Logf("%v", err)
	}
}

// TestLookups: by key, many keys at once, by address; a disabled peer is
// unknown; a malformed row is an error, not unknown.
func TestLookups(t *testing.T) {
	srv, s := newStore(t)
	ctx := context.Background()
	a, b, c, off := key(t), key(t), key(t), key(t)
	pa := peer(a, "198.18.5.1/32,fd00::5:1/128")
	pa.Endpoint = netip.MustParseAddrPort("198.18.9.9:51820")
	pa.PersistentKeepalive = 25 * time.Second
	pa.PresharedKey = [32]byte{7}
	pb := peer(b, "198.18.6.0/24")
	pb.Endpoint = netip.MustParseAddrPort("198.18.9.10:51820")
	poff := peer(off, "198.18.7.1/32")
	poff.Disabled = true
	if err := s.Put(ctx, pa, pb, poff); err != nil {
		t.Fatal(err)
	}
	got, err := s.LookupPeer(ctx, a)
	if err != nil || !got.Equal(pa.PeerConfig) {
		t.Fatalf("LookupPeer = %+v, %v; want %+v", got, err, pa.PeerConfig)
	}
	for _, k := range []hooks.PublicKey{c, off} {
		if _, err := s.LookupPeer(ctx, k); !errors.Is(err, hooks.ErrUnknownPeer) {
			t.Fatalf("LookupPeer(unknown or disabled) = %v", err)
		}
	}
	res, err := s.LookupPeers(ctx, []hooks.PublicKey{c, b, a, off})
	if err != nil || len(res) != 4 {
		t.Fatal(res, err)
	}
	if !errors.Is(res[0].Err, hooks.ErrUnknownPeer) || !errors.Is(res[3].Err, hooks.ErrUnknownPeer) ||
		res[1].Err != nil || !res[1].Config.Equal(pb.PeerConfig) || !res[2].Config.Equal(pa.PeerConfig) {
		t.Fatalf("LookupPeers = %+v", res)
	}
	if got, err := s.LookupAddr(ctx, netip.MustParseAddr("198.18.6.77")); err != nil || got.PublicKey != b {
		t.Fatalf("LookupAddr in /24 = %v, %v", got.PublicKey, err)
	}
	if got, err := s.LookupAddr(ctx, netip.MustParseAddr("fd00::5:1")); err != nil || got.PublicKey != a {
		t.Fatalf("LookupAddr v6 = %v, %v", got.PublicKey, err)
	}
	for _, ad := range []string{"198.18.7.1", "198.18.8.1"} {
		if _, err := s.LookupAddr(ctx, netip.MustParseAddr(ad)); !errors.Is(err, hooks.ErrUnknownPeer) {
			t.Fatalf("LookupAddr(%s) = %v; want unknown (disabled or none)", ad, err)
		}
	}
	// A longer prefix wins over the /24.
	inner := key(t)
	if err := s.Put(ctx, peer(inner, "198.18.6.128/25")); err != nil {
		t.Fatal(err)
	}
	if got, err := s.LookupAddr(ctx, netip.MustParseAddr("198.18.6.200")); err != nil || got.PublicKey != inner {
		t.Fatalf("LookupAddr longest = %v, %v", got.PublicKey, err)
	}

	// A row written by hand that does not read: an error naming the
	// peer, not "unknown" (the device keeps what it installed).
	sql(t, srv, `UPDATE wghooks_peers SET allowed_ips = '198.18.5.1/33,nonsense' WHERE public_key = '\x`+a.Hex()+`'`)
	if _, err := s.LookupPeer(ctx, a); err == nil || errors.Is(err, hooks.ErrUnknownPeer) || !strings.Contains(err.Error(), "198.18.5.1/33") {
		t.Fatalf("malformed row: %v; want an error quoting it", err)
	}
	res, err = s.LookupPeers(ctx, []hooks.PublicKey{a, b})
	if err != nil || res[0].Err == nil || errors.Is(res[0].Err, hooks.ErrUnknownPeer) || res[1].Err != nil {
		t.Fatalf("batch with a malformed row: %+v, %v", res, err)
	}
	if err := s.Each(ctx, func(pgstore.Peer) error { return nil }); err == nil {
		t.Fatal("Each read a malformed row without an error")
	}
	// Its preshared key never reaches an error.
	if _, err := s.LookupPeer(ctx, a); strings.Contains(err.Error(), "0700000000") {
		t.Fatalf("error carries the preshared key: %v", err)
	}
}

// TestPeerState: two gateways' connections write the fleet's state;
// per key the later handshake wins; a batch with an invalid entry writes
// nothing; since and limit are honoured; a removed peer's state goes
// with it; a row written by hand that does not parse is skipped and
// named. TestPeerStateContract runs the shared checks.
func TestPeerState(t *testing.T) {
	srv, s := newStore(t)
	other, err := pgstore.Open(context.Background(), pgstore.Config{URL: srv.URL("postgres")})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	ctx := context.Background()
	a, b, gw := key(t), key(t), key(t)
	t0 := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
	ep1 := netip.MustParseAddrPort("198.18.1.1:1000")
	ep2 := netip.MustParseAddrPort("[fd00::2]:2000")
	if err := s.SavePeerState(ctx, []hooks.PeerState{{Key: a, Endpoint: ep1, LastHandshake: t0, Gateway: gw}, {Key: b, LastHandshake: t0, Gateway: gw}}); err == nil {
		t.Fatal("a batch with an entry without an endpoint was saved")
	}
	if got, _ := s.LoadPeerState(ctx, gw, time.Time{}, 10); len(got) != 0 {
		t.Fatalf("a refused batch wrote %v", got)
	}
	if err := s.SavePeerState(ctx, []hooks.PeerState{{Key: a, Endpoint: ep1, LastHandshake: t0.Add(time.Minute), Gateway: gw}, {Key: a, Endpoint: ep2, LastHandshake: t0, Gateway: gw}, {Key: b, Endpoint: ep1, LastHandshake: t0, Gateway: gw}}); err != nil {
		t.Fatal(err)
	}
	// The other gateway's older view does not roll a back; its newer one
	// moves b.
	if err := other.SavePeerState(ctx, []hooks.PeerState{{Key: a, Endpoint: ep2, LastHandshake: t0, Gateway: gw}, {Key: b, Endpoint: ep2, LastHandshake: t0.Add(2 * time.Minute), Gateway: gw}}); err != nil {
		t.Fatal(err)
	}
	got, err := s.LoadPeerState(ctx, gw, t0, 10)
	if err != nil || len(got) != 2 {
		t.Fatal(got, err)
	}
	if got[0].Key != b || got[0].Endpoint != ep2 || got[1].Key != a || got[1].Endpoint != ep1 || !got[1].LastHandshake.Equal(t0.Add(time.Minute)) {
		t.Fatalf("LoadPeerState = %+v", got)
	}
	if got, _ := s.LoadPeerState(ctx, gw, t0.Add(90*time.Second), 10); len(got) != 1 || got[0].Key != b {
		t.Fatalf("since: %+v", got)
	}
	if got, _ := s.LoadPeerState(ctx, gw, t0, 1); len(got) != 1 {
		t.Fatalf("limit: %+v", got)
	}
	// A stored peer deleted: its state goes too.
	if err := s.Put(ctx, peer(a, "198.18.2.1/32")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Delete(ctx, a); err != nil {
		t.Fatal(err)
	}
	sql(t, srv, `UPDATE wghooks_peer_state SET endpoint = 'garbage' WHERE public_key = '\x`+b.Hex()+`'`)
	got, err = s.LoadPeerState(ctx, gw, time.Time{}, 10)
	if len(got) != 0 || !errors.Is(err, pgstore.ErrMalformedState) || !strings.Contains(err.Error(), "garbage") {
		t.Fatalf("after delete and a malformed row: %+v, %v", got, err)
	}
}

// changes records a watcher's calls.
type changes struct {
	mu      sync.Mutex
	keys    map[hooks.PublicKey]int
	resyncs int
}

func (c *changes) changed(keys []hooks.PublicKey) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, k := range keys {
		c.keys[k]++
	}
}

func (c *changes) resync() {
	c.mu.Lock()
	c.resyncs++
	c.mu.Unlock()
}

func (c *changes) count(k hooks.PublicKey) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.keys[k]
}

func watch(t *testing.T, s *pgstore.Store) *changes {
	c := &changes{keys: map[hooks.PublicKey]int{}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.WatchChanges(ctx, c.changed, c.resync) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("WatchChanges returned %v", err)
		}
	})
	return c
}

// TestWatchChanges: adds, changes, disables and removals are pushed; a
// change made while the watcher's connection was down arrives when it
// reconnects; the store down fails lookups fast and comes back.
func TestWatchChanges(t *testing.T) {
	testkit.CheckLeaks(t)
	srv, s := newStore(t)
	ctx := context.Background()
	c := watch(t, s)
	// Wait until it listens: a change is seen.
	probe := key(t)
	if err := s.Put(ctx, peer(probe, "198.18.3.1/32")); err != nil {
		t.Fatal(err)
	}
	enabled := true
	testkit.EventuallyNil(t, 10*time.Second, "watcher sees a change", func() error {
		// A change each time (the watcher may not listen yet).
		enabled = !enabled
		if _, err := s.SetEnabled(ctx, probe, enabled); err != nil {
			return err
		}
		if !testkit.Poll(200*time.Millisecond, func() bool { return c.count(probe) > 0 }) {
			return errors.New("not yet")
		}
		return nil
	})
	a := key(t)
	steps := []struct {
		what string
		do   func() error
	}{
		{"add", func() error { return s.Put(ctx, peer(a, "198.18.3.2/32")) }},
		{"change", func() error { return s.Put(ctx, peer(a, "198.18.3.3/32")) }},
		{"disable", func() error { _, err := s.SetEnabled(ctx, a, false); return err }},
		{"remove", func() error { _, err := s.Delete(ctx, a); return err }},
	}
	for i, st := range steps {
		if err := st.do(); err != nil {
			t.Fatal(err)
		}
		testkit.Eventually(t, 5*time.Second, st.what+" pushed", func() bool { return c.count(a) >= i+1 })
	}
	// A no-op write is not a change.
	b := key(t)
	if err := s.Put(ctx, peer(b, "198.18.3.4/32")); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 5*time.Second, "add of b pushed", func() bool { return c.count(b) == 1 })

	// The watcher's connection cut, and no new one accepted, while a
	// change is made: it arrives once the watcher is back.
	op, err := pgx.Connect(ctx, srv.URL("postgres")) // open before connections are refused
	if err != nil {
		t.Fatal(err)
	}
	defer op.Close(ctx)
	sqlOn(t, srv, "template1", `ALTER DATABASE postgres ALLOW_CONNECTIONS false`,
		`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'wghooks watch'`)
	d := key(t)
	if _, err := op.Exec(ctx, `INSERT INTO wghooks_peers (public_key, allowed_ips) VALUES ('\x`+d.Hex()+`', '198.18.3.5/32')`); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 10*time.Second, "the store down while the watcher cannot connect", s.Down)
	sqlOn(t, srv, "template1", `ALTER DATABASE postgres ALLOW_CONNECTIONS true`)
	testkit.Eventually(t, 15*time.Second, "change made while away applied on reconnect", func() bool { return c.count(d) == 1 })
	if c.count(b) != 1 {
		t.Fatalf("b reported %d times; want once", c.count(b))
	}

	// The server gone: lookups fail fast, the store says down; back:
	// lookups answer again.
	if err := srv.Crash(); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 10*time.Second, "store down", s.Down)
	start := time.Now()
	for i := 0; i < 50; i++ {
		if _, err := s.LookupPeer(ctx, b); err == nil || errors.Is(err, hooks.ErrUnknownPeer) {
			t.Fatalf("lookup while down: %v; want a failure", err)
		}
	}
	if el := time.Since(start); el > 3*time.Second {
		t.Fatalf("50 lookups while down took %v; want them refused at once", el)
	}
	// Many more, concurrently, for a few probe intervals: no goroutine
	// stays behind.
	before := runtime.NumGoroutine()
	var wg sync.WaitGroup
	for w := 0; w < 16; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for end := time.Now().Add(2500 * time.Millisecond); time.Now().Before(end); time.Sleep(time.Millisecond) {
				s.LookupPeer(ctx, key(t))
			}
		}()
	}
	wg.Wait()
	testkit.Eventually(t, 10*time.Second, "goroutines back to where they were while down", func() bool {
		return runtime.NumGoroutine() <= before+2
	})
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	e := key(t)
	testkit.EventuallyNil(t, 15*time.Second, "store back", func() error { return s.Put(ctx, peer(e, "198.18.3.6/32")) })
	testkit.EventuallyNil(t, 15*time.Second, "lookups answer again", func() error { _, err := s.LookupPeer(ctx, e); return err })
	testkit.Eventually(t, 15*time.Second, "change after the outage pushed", func() bool { return c.count(e) == 1 })
}

// TestPeerStateContract holds the PostgreSQL store to the checks every
// hooks.StateStore meets (testkit.CheckStateStore), over two connections
// as two gateways would use it.
func TestPeerStateContract(t *testing.T) {
	srv, a := newStore(t)
	b, err := pgstore.Open(context.Background(), pgstore.Config{URL: srv.URL("postgres")})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	testkit.CheckStateStore(t, a, b)
}

// TestPeerStateMigrated: state written under schema version 1, which did
// not record the writer's key, survives `migrate` with an empty gateway
// key, is never returned for a takeover, and does not stop a gateway
// writing its own state of the same peer.
func TestPeerStateMigrated(t *testing.T) {
	srv := pgtest.New(t)
	url := srv.URL("postgres")
	ctx := context.Background()
	p, gw := key(t), key(t)
	t0 := time.Now().Add(-time.Minute).Truncate(time.Millisecond)
	sql(t, srv, `CREATE TABLE wghooks_schema_version (version integer PRIMARY KEY, applied timestamptz NOT NULL DEFAULT now())`,
		pgstore.Migrations[0],
		`INSERT INTO wghooks_schema_version (version) VALUES (1)`,
		`INSERT INTO wghooks_peers (public_key) VALUES ('\x`+p.Hex()+`')`,
		`INSERT INTO wghooks_peer_state (public_key, endpoint, last_handshake) VALUES ('\x`+p.Hex()+`', '198.18.1.1:1', now())`)
	v, err := pgstore.Migrate(ctx, url)
	if err != nil || len(v) != pgstore.SchemaVersion-1 || v[0] != 2 {
		t.Fatalf("migrate from version 1 applied %v, %v; want from 2 on", v, err)
	}
	s, err := pgstore.Open(ctx, pgstore.Config{URL: url})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got, err := s.LoadPeerState(ctx, gw, time.Time{}, 10); err != nil || len(got) != 0 {
		t.Fatalf("a version 1 row was returned for a takeover: %+v, %v", got, err)
	}
	if got, err := s.LoadPeerState(ctx, hooks.PublicKey{}, time.Time{}, 10); err != nil || len(got) != 0 {
		t.Fatalf("a read without a gateway key returned %+v, %v", got, err)
	}
	ep := netip.MustParseAddrPort("198.18.1.2:2")
	if err := s.SavePeerState(ctx, []hooks.PeerState{{Key: p, Endpoint: ep, LastHandshake: t0, Gateway: gw}}); err != nil {
		t.Fatal(err)
	}
	if got, err := s.LoadPeerState(ctx, gw, time.Time{}, 10); err != nil || len(got) != 1 || got[0].Endpoint != ep || got[0].Gateway != gw {
		t.Fatalf("after a save under the gateway's key: %+v, %v", got, err)
	}
	// Deleting the peer still takes all its state rows, old and new.
	if _, err := s.Delete(ctx, p); err != nil {
		t.Fatal(err)
	}
	c, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	var n int
	if err := c.QueryRow(ctx, `SELECT count(*) FROM wghooks_peer_state`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("after Delete %d state rows (%v), want none", n, err)
	}
}
