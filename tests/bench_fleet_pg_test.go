package tests

// Benchmarks of the fleet's PostgreSQL store (scripts/bench/fleet_pg.sh
// runs them all), each against its counterpart in the same run:
//
//	BenchmarkFleetPGFirstContact   a new client's first packet to its echo,
//	                               peer from PostgreSQL vs from SQLite vs
//	                               upstream with the peer preloaded
//	BenchmarkFleetPGRemoval        a key held by three gateways removed
//	                               from the store: time until the last
//	                               gateway cut it (p50, p99)
//	BenchmarkFleetPGScale          a FLEET_PG_SCALE-peer store (10,000,000
//	                               in `make bench`; skipped when unset):
//	                               gateway start time, lookup p99 by key
//	                               and by address, first-contact installs

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	mrand "math/rand/v2"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/wghooks/wghooks/device"
	"github.com/wghooks/wghooks/hooks"
	"github.com/wghooks/wghooks/hooks/pgstore"
	"github.com/wghooks/wghooks/hooks/sqlstore"
	"github.com/wghooks/wghooks/internal/pgtest"
	"github.com/wghooks/wghooks/internal/testkit"
)

// benchPGStore starts PostgreSQL, migrates it and opens a store.
func benchPGStore(b testing.TB) (*pgtest.Server, *pgstore.Store) {
	b.Helper()
	srv := pgtest.New(b)
	url := srv.URL("postgres")
	if _, err := pgstore.Migrate(context.Background(), url); err != nil {
		b.Fatal(err)
	}
	s, err := pgstore.Open(context.Background(), pgstore.Config{URL: url})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(s.Close)
	return srv, s
}

// BenchmarkFleetPGFirstContact times a brand-new client's first round
// trip with the peer provisioned from PostgreSQL on first contact, from
// SQLite, and with upstream preloaded, sample by sample in one run
// (BenchmarkJITFirstContact's rig). Goal: PostgreSQL p50 and p99 at most
// 1.2× SQLite's. FLEET_PG_FIRST_CONTACTS sets the samples (default 100).
func BenchmarkFleetPGFirstContact(b *testing.B) {
	samples := benchJITEnvInt("FLEET_PG_FIRST_CONTACTS", 100)
	_, pg := benchPGStore(b)
	lite := benchJITStore(b)
	pgSrv, _ := newJITServer(b, pg, device.JITConfig{}, nil, nil)
	liteSrv, _ := newJITServer(b, lite, device.JITConfig{}, nil, nil)
	up, upDev := testkit.NewUpstream(b, "198.18.0.1", nil)
	testkit.ServeEcho(b, up)

	lat := map[string][]time.Duration{}
	retransmits := map[string]int64{}
	for i := 0; i < samples; i++ {
		addr := netip.AddrFrom4([4]byte{198, 18, 1 + byte(i/250), byte(i%250 + 1)})
		pfx := []netip.Prefix{netip.PrefixFrom(addr, 32)}
		type side struct {
			name   string
			server *testkit.Node
		}
		sides := []side{{"pg", pgSrv}, {"sqlite", liteSrv}, {"upstream", up}}
		// Each goes first in turn: the first after the pause is quicker.
		for r := 0; r < i%3; r++ {
			sides = append(sides[1:], sides[0])
		}
		for _, side := range sides {
			c := newJITClient(b, addr.String(), side.server)
			var err error
			switch side.name {
			case "pg":
				err = pg.Put(context.Background(), pgstore.Peer{PeerConfig: hooks.PeerConfig{PublicKey: c.Key.Pub, AllowedIPs: pfx}})
			case "sqlite":
				err = lite.Put(context.Background(), sqlstore.Peer{PeerConfig: hooks.PeerConfig{PublicKey: c.Key.Pub, AllowedIPs: pfx}})
			default:
				err = upDev.IpcSet(testkit.UAPI("public_key", c.Key.PubHex(), "allowed_ip", addr.String()+"/32"))
			}
			if err != nil {
				b.Fatal(err)
			}
			start := time.Now()
			if err := c.Node.Echo(side.server.Addr, 15*time.Second); err != nil {
				b.Fatalf("first contact %d (%s): %v; client sent %d initiations", i, side.name, err, c.bind.InitSent.Load())
			}
			lat[side.name] = append(lat[side.name], time.Since(start))
			retransmits[side.name] += c.bind.InitSent.Load() - 1
			c.dev.Close()
		}
		// Stay under the per-source-IP decode rate (20/s).
		time.Sleep(55 * time.Millisecond)
	}
	for _, side := range []string{"pg", "sqlite", "upstream"} {
		b.ReportMetric(benchPercentileMs(lat[side], 0.5), side+"_p50_ms")
		b.ReportMetric(benchPercentileMs(lat[side], 0.99), side+"_p99_ms")
	}
	b.ReportMetric(benchPercentileMs(lat["pg"], 0.5)/benchPercentileMs(lat["sqlite"], 0.5), "pg/sqlite_p50")
	b.ReportMetric(benchPercentileMs(lat["pg"], 0.99)/benchPercentileMs(lat["sqlite"], 0.99), "pg/sqlite_p99")
	b.ReportMetric(float64(retransmits["pg"]+retransmits["sqlite"]), "retransmits")
}

func benchPercentileMs(l []time.Duration, q float64) float64 {
	if len(l) == 0 {
		return 0
	}
	s := slices.Clone(l)
	slices.Sort(s)
	return float64(s[int(q*float64(len(s)-1))].Microseconds()) / 1000
}

// BenchmarkFleetPGRemoval: three gateways on one store each install a key
// (a crafted initiation), then the key is removed from the store; the
// sample is the time until the last gateway removed the peer (its
// PeerRevoked event). Goal: p99 ≤ 1 s. FLEET_PG_REMOVALS sets the samples
// (default 50).
func BenchmarkFleetPGRemoval(b *testing.B) {
	samples := benchJITEnvInt("FLEET_PG_REMOVALS", 50)
	f := newFleet(b, 3)
	var lat []time.Duration
	for n := 0; n < samples; n++ {
		k := testkit.NewKeypair()
		if err := f.gws[0].store.Put(context.Background(), pgstore.Peer{PeerConfig: hooks.PeerConfig{PublicKey: k.Pub,
			AllowedIPs: []netip.Prefix{netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 9, byte(n >> 8), byte(n)}), 32)}}}); err != nil {
			b.Fatal(err)
		}
		for _, g := range f.gws {
			sender := newJITSender(b, g.Node)
			sender.send(b, sender.initiation(b, k))
			testkit.Eventually(b, 10*time.Second, "installed", func() bool { return g.ev.count(hooks.PeerInstalled, k.Pub) > 0 })
		}
		start := time.Now()
		if _, err := f.gws[0].store.Delete(context.Background(), k.Pub); err != nil {
			b.Fatal(err)
		}
		var last time.Time
		for _, g := range f.gws {
			testkit.Eventually(b, 10*time.Second, "revoked", func() bool { return g.ev.count(hooks.PeerRevoked, k.Pub) > 0 })
			if t := g.ev.when(hooks.PeerRevoked, k.Pub); t.After(last) {
				last = t
			}
		}
		lat = append(lat, last.Sub(start))
		time.Sleep(60 * time.Millisecond) // the per-source decode rate
	}
	b.ReportMetric(benchPercentileMs(lat, 0.5), "removal_p50_ms")
	b.ReportMetric(benchPercentileMs(lat, 0.99), "removal_p99_ms")
}

// benchPGKey is the i-th generated peer's key: sha256 of i as 8 bytes,
// as the store's generator writes it (sha256(int8send(i))).
func benchPGKey(i int64) [32]byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(i))
	return sha256.Sum256(b[:])
}

// BenchmarkFleetPGScale fills a store with FLEET_PG_SCALE peers in SQL
// (generate_series; keys sha256(int8send(i)); addresses 10.x.y.z/32),
// then reports a gateway's start time on it (open the store, check the
// schema, device up), lookup p99 by key and by address of random stored
// peers, and the first-contact install latency (p50, p99) of 20 real keys
// among them. Skipped unless FLEET_PG_SCALE is set (`make bench` sets
// 10,000,000).
func BenchmarkFleetPGScale(b *testing.B) {
	n, _ := strconv.ParseInt(os.Getenv("FLEET_PG_SCALE"), 10, 64)
	if n <= 0 {
		b.Skip("set FLEET_PG_SCALE=N to fill a store of N peers (make bench: 10000000)")
	}
	srv := pgtest.New(b)
	url := srv.URL("postgres")
	if _, err := pgstore.Migrate(context.Background(), url); err != nil {
		b.Fatal(err)
	}
	t0 := time.Now()
	if err := benchPGFill(url, n); err != nil {
		b.Fatal(err)
	}
	b.Logf("filled %d peers in %v", n, time.Since(t0).Round(time.Millisecond))
	const real = 20
	ev := &fleetEvents{}
	start := time.Now()
	store, err := pgstore.Open(context.Background(), pgstore.Config{URL: url})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(store.Close)
	gw, _ := newJITServerWith(b, store, device.Config{JIT: device.JITConfig{RevalidateInterval: -1, MaxLookupRate: -1, OnPeerEvent: ev.on},
		Guard: device.GuardConfig{Rate: -1}}, nil, nil)
	ready := time.Since(start)

	ctx := context.Background()
	rng := mrand.New(mrand.NewPCG(1, 2))
	var byKey, byAddr []time.Duration
	for i := 0; i < 1000; i++ {
		id := rng.Int64N(n) + 1
		t := time.Now()
		if _, err := store.LookupPeer(ctx, benchPGKey(id)); err != nil {
			b.Fatalf("lookup of generated peer %d: %v", id, err)
		}
		byKey = append(byKey, time.Since(t))
		a := netip.AddrFrom4([4]byte{10, byte(id >> 16), byte(id >> 8), byte(id)})
		t = time.Now()
		if _, err := store.LookupAddr(ctx, a); err != nil && n < 1<<24 {
			b.Fatalf("lookup of %s: %v", a, err)
		}
		byAddr = append(byAddr, time.Since(t))
	}
	// Real keys among them, handshaking in, each from a new source port
	// (a source that handshook before is a known one, decoded only if
	// the device does not answer it).
	var installs []time.Duration
	for i := 0; i < real; i++ {
		k := testkit.KeypairFrom(benchJITKeyPriv(i))
		if err := store.Put(ctx, pgstore.Peer{PeerConfig: hooks.PeerConfig{PublicKey: k.Pub,
			AllowedIPs: []netip.Prefix{netip.MustParsePrefix(fmt.Sprintf("100.64.0.%d/32", i+1))}}}); err != nil {
			b.Fatal(err)
		}
		sender := newJITSender(b, gw)
		sender.send(b, sender.initiation(b, k))
		testkit.Eventually(b, 10*time.Second, "installed", func() bool { return ev.count(hooks.PeerInstalled, k.Pub) > 0 })
		installs = append(installs, ev.latency(hooks.PeerInstalled, k.Pub))
		time.Sleep(60 * time.Millisecond)
	}
	b.ReportMetric(float64(n), "peers")
	b.ReportMetric(float64(ready.Microseconds())/1000, "start_ms")
	b.ReportMetric(benchPercentileMs(byKey, 0.5), "lookup_key_p50_ms")
	b.ReportMetric(benchPercentileMs(byKey, 0.99), "lookup_key_p99_ms")
	b.ReportMetric(benchPercentileMs(byAddr, 0.99), "lookup_addr_p99_ms")
	b.ReportMetric(benchPercentileMs(installs, 0.5), "install_p50_ms")
	b.ReportMetric(benchPercentileMs(installs, 0.99), "install_p99_ms")
}

func benchJITKeyPriv(i int) [32]byte {
	priv, _ := benchJITKey(1_000_000 + i)
	return priv
}

// benchPGFill writes n generated peers in SQL, in chunks, with the
// change trigger off for the bulk load (session_replication_role) and
// the indexes built after it (random keys into a live B-tree cost a page
// each), and indexes their addresses the way the trigger would.
func benchPGFill(url string, n int64) error {
	ctx := context.Background()
	c, err := pgx.Connect(ctx, url)
	if err != nil {
		return err
	}
	defer c.Close(ctx)
	if _, err := c.Exec(ctx, `SET session_replication_role = replica; SET maintenance_work_mem = '512MB';
		ALTER TABLE wghooks_peers DROP CONSTRAINT wghooks_peers_pkey;
		ALTER TABLE wghooks_peer_prefixes DROP CONSTRAINT wghooks_peer_prefixes_pkey;
		DROP INDEX wghooks_peer_prefixes_prefix`); err != nil {
		return err
	}
	const chunk = 1_000_000
	for lo := int64(1); lo <= n; lo += chunk {
		hi := min(lo+chunk-1, n)
		if _, err := c.Exec(ctx, `INSERT INTO wghooks_peers (public_key, allowed_ips)
			SELECT sha256(int8send(i)), format('10.%s.%s.%s/32', (i >> 16) & 255, (i >> 8) & 255, i & 255)
			FROM generate_series($1::bigint, $2::bigint) AS i`, lo, hi); err != nil {
			return err
		}
		if _, err := c.Exec(ctx, `INSERT INTO wghooks_peer_prefixes (public_key, prefix)
			SELECT sha256(int8send(i)), format('10.%s.%s.%s/32', (i >> 16) & 255, (i >> 8) & 255, i & 255)::cidr
			FROM generate_series($1::bigint, $2::bigint) AS i`, lo, hi); err != nil {
			return err
		}
	}
	_, err = c.Exec(ctx, `ALTER TABLE wghooks_peers ADD PRIMARY KEY (public_key);
		ALTER TABLE wghooks_peer_prefixes ADD PRIMARY KEY (public_key, prefix);
		CREATE INDEX wghooks_peer_prefixes_prefix ON wghooks_peer_prefixes USING gist (prefix inet_ops);
		ANALYZE wghooks_peers; ANALYZE wghooks_peer_prefixes`)
	return err
}

// BenchmarkFleetPGMassArrival is benchJITMassArrival on the PostgreSQL
// store: N new clients at once, asked in batches (one = ANY query each),
// against upstream with the same clients preloaded, in the same run.
func BenchmarkFleetPGMassArrival(b *testing.B) {
	benchJITMassArrival(b, newBenchPGPeerStore)
}

// newBenchPGPeerStore is benchPGStore as a benchPeerStore.
func newBenchPGPeerStore(tb testing.TB) benchPeerStore {
	tb.Helper()
	_, s := benchPGStore(tb)
	return pgPeerStore(s)
}

// pgPeerStore is s as a benchPeerStore.
func pgPeerStore(s *pgstore.Store) benchPeerStore {
	return asPeerStore(s, s.Put, func(c hooks.PeerConfig) pgstore.Peer { return pgstore.Peer{PeerConfig: c} })
}
