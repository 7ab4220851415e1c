package tests

// BenchmarkJITMassArrival (scripts/bench/jit.sh): N clients the device
// has never seen knock at once (a gateway restart, a backend failover),
// each from its own loopback address, against plain upstream answering
// the same N clients with their peers preloaded, in the same run. The peer store is a
// constructor (benchPeerStore), so every store the daemon can use is
// measured the same way.

import (
	"context"
	"net"
	"net/netip"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.zx2c4.com/wireguard/tai64n"

	"github.com/wghooks/wghooks/conn"
	"github.com/wghooks/wghooks/device"
	"github.com/wghooks/wghooks/hooks"
	"github.com/wghooks/wghooks/hooks/sqlstore"
	"github.com/wghooks/wghooks/internal/testkit"
)

// benchPeerStore is a peer store under benchmark: the provider the device
// asks, and how the benchmark fills it.
type benchPeerStore struct {
	hooks.Provider
	Put func(ctx context.Context, peers []hooks.PeerConfig) error
}

// newBenchSQLiteStore opens an empty SQLite store in tb's temp dir.
func newBenchSQLiteStore(tb testing.TB) benchPeerStore {
	tb.Helper()
	s, err := sqlstore.Open(filepath.Join(tb.TempDir(), "peers.db"))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Close() })
	return sqlitePeerStore(s)
}

// sqlitePeerStore is s as a benchPeerStore.
func sqlitePeerStore(s *sqlstore.Store) benchPeerStore {
	return asPeerStore(s, s.Put, func(c hooks.PeerConfig) sqlstore.Peer { return sqlstore.Peer{PeerConfig: c} })
}

// asPeerStore is a store whose rows R each carry a PeerConfig (row makes
// one) as a benchPeerStore.
func asPeerStore[R any](p hooks.Provider, put func(context.Context, ...R) error, row func(hooks.PeerConfig) R) benchPeerStore {
	return benchPeerStore{Provider: p, Put: func(ctx context.Context, peers []hooks.PeerConfig) error {
		rows := make([]R, len(peers))
		for i, c := range peers {
			rows[i] = row(c)
		}
		return put(ctx, rows...)
	}}
}

// BenchmarkJITMassArrival is benchJITMassArrival on the SQLite store.
func BenchmarkJITMassArrival(b *testing.B) {
	benchJITMassArrival(b, newBenchSQLiteStore)
}

// benchJITMassArrival measures peers provisioned per second when
// JIT_MASS_CLIENTS new clients (default 1,000) arrive at once, against
// upstream's handshakes per second with the same clients preloaded, one
// after the other in the same run. Each client sends one initiation from
// its own loopback address and, like a real one, sends a new one after 5
// s without a response (a retransmit, counted). JIT_MASS_WINDOW clients
// (default 64; upstream turns to cookies past 128 queued) knock at a time,
// as fast as the responder answers, in JIT_MASS_ROUNDS rounds (default 4)
// that alternate the sides. Run with -benchtime 1x.
func benchJITMassArrival(b *testing.B, newStore func(testing.TB) benchPeerStore) {
	n := benchJITEnvInt("JIT_MASS_CLIENTS", 1000)
	window := benchJITEnvInt("JIT_MASS_WINDOW", 64)
	rounds := min(benchJITEnvInt("JIT_MASS_ROUNDS", 4), n)
	store := newStore(b)

	// The guard and the lookup budget are off: they bound floods of new
	// sources, a separate matter; this measures provisioning itself.
	ours, od := testkit.NewWghooks(b, "198.18.0.1", device.Config{
		JIT: device.JITConfig{Provider: store, MaxPeers: n + 1000, IdleTimeout: -1, RevalidateInterval: -1, MaxLookupRate: -1},
		HA:  device.HAConfig{FlowEscapeOff: true}, Guard: device.GuardConfig{Rate: -1},
	})
	serverKey := ours.Key

	// Clients: keys, sealers and store rows, built before anything is
	// timed (two X25519 each).
	sealers := make([]*conn.Sealer, n)
	peers := make([]hooks.PeerConfig, n)
	eph := testkit.NewKeypair()
	var wg sync.WaitGroup
	var buildErr atomic.Value
	for w := 0; w < runtime.GOMAXPROCS(0); w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := w; i < n; i += runtime.GOMAXPROCS(0) {
				priv, pub := benchJITKey(1_000_000 + i)
				s, err := conn.NewSealer(pub, priv, serverKey.Pub, eph.Priv)
				if err != nil {
					buildErr.Store(err)
					return
				}
				sealers[i] = s
				peers[i] = hooks.PeerConfig{PublicKey: pub, AllowedIPs: []netip.Prefix{netip.PrefixFrom(benchJITActiveAddr(i), 32)}}
			}
		}(w)
	}
	wg.Wait()
	if err, _ := buildErr.Load().(error); err != nil {
		b.Fatal(err)
	}
	if err := store.Put(context.Background(), peers); err != nil {
		b.Fatal(err)
	}

	// Upstream with the peers preloaded (not timed).
	up, ud := testkit.NewUpstream(b, "198.18.0.2", nil)
	if err := ud.IpcSet(testkit.UAPI("private_key", serverKey.PrivHex())); err != nil {
		b.Fatal(err)
	}
	preloadStart := time.Now()
	if err := ud.IpcSet(benchJITMassConf(peers)); err != nil {
		b.Fatal(err)
	}
	upAdd := time.Since(preloadStart) / time.Duration(n)

	// In rounds, each a slice of the clients knocking on one side then
	// the other (who goes first alternates): the machine's drift over the
	// run hits both alike.
	var oursRes, upRes benchKnockResult
	var oursCPU, upCPU time.Duration // the whole process's, clients included
	for r := 0; r < rounds; r++ {
		part := sealers[r*n/rounds : (r+1)*n/rounds]
		for side := 0; side < 2; side++ {
			cpu := processCPU()
			if (r+side)%2 == 0 {
				upRes.add(benchJITKnock(b, up.Port, part, window, 2, r*n/rounds))
				upCPU += processCPU() - cpu
			} else {
				oursRes.add(benchJITKnock(b, ours.Port, part, window, 3, r*n/rounds))
				oursCPU += processCPU() - cpu
			}
		}
	}
	st := od.Stats()
	b.Logf("ours: %d clients in %v (%d retransmits, %d lost), %d peers installed; upstream: %v (%d retransmits, %d lost)",
		n, oursRes.elapsed.Round(time.Millisecond), oursRes.retransmits, oursRes.lost, st.PeersInstalled,
		upRes.elapsed.Round(time.Millisecond), upRes.retransmits, upRes.lost)
	if oursRes.lost > 0 || upRes.lost > 0 {
		b.Fatalf("clients never answered: ours %d, upstream %d", oursRes.lost, upRes.lost)
	}
	oursRate := float64(n) / oursRes.elapsed.Seconds()
	upRate := float64(n) / upRes.elapsed.Seconds()
	b.ReportMetric(oursRate, "ours_provisioned/s")
	b.ReportMetric(upRate, "upstream_hs/s")
	b.ReportMetric(oursRate/upRate, "ratio")
	b.ReportMetric(float64(oursRes.retransmits), "ours_retransmits")
	b.ReportMetric(float64(upRes.retransmits), "upstream_retransmits")
	// What each new client costs beside upstream's own handshake: our
	// authentication (es and ss: ours_decode_per_peer_ms) and the install,
	// whose core is upstream adding the peer (NewPeer computes ss again,
	// holding the peer table's write lock). upstream_peer_add_ms is that
	// alone, from the preload. With upstream's handshake taking all the
	// cores (cores/upRate of CPU each), ceiling_ratio is where this design
	// stops without a seam to hand upstream the secrets already computed.
	if st.InitiationsDecoded > 0 && st.PeersInstalled > 0 && st.InstallTransactions > 0 {
		decode := st.DecodeSeconds / float64(st.InitiationsDecoded)
		b.ReportMetric(decode*1000, "ours_decode_per_peer_ms")
		b.ReportMetric(st.InstallSeconds*1000/float64(st.PeersInstalled), "ours_install_per_peer_ms")
		perHS := float64(runtime.GOMAXPROCS(0)) / upRate
		b.ReportMetric(perHS/(perHS+decode+upAdd.Seconds()), "ceiling_ratio")
	}
	if oursCPU > 0 && upCPU > 0 {
		// CPU per client, the clients' sends and receives included: the
		// rate the machine would give if both sides kept every core busy.
		b.ReportMetric(float64(upCPU)/float64(oursCPU), "cpu_ratio")
		b.ReportMetric(oursCPU.Seconds()/(oursRes.elapsed.Seconds()*float64(runtime.GOMAXPROCS(0))), "ours_cpu_busy")
		b.ReportMetric(upCPU.Seconds()/(upRes.elapsed.Seconds()*float64(runtime.GOMAXPROCS(0))), "upstream_cpu_busy")
	}
	b.ReportMetric(float64(upAdd.Microseconds())/1000, "upstream_peer_add_ms")
	b.ReportMetric(benchX25519Millis(b), "x25519_ms")
}

// benchJITMassConf is the UAPI text that preloads peers.
func benchJITMassConf(peers []hooks.PeerConfig) string {
	var conf strings.Builder
	for _, p := range peers {
		conf.WriteString(testkit.UAPI("public_key", p.PublicKey.Hex(), "allowed_ip", p.AllowedIPs[0].String()))
	}
	return conf.String()
}

type benchKnockResult struct {
	elapsed     time.Duration
	retransmits int64
	lost        int64
}

func (r *benchKnockResult) add(o benchKnockResult) {
	r.elapsed += o.elapsed
	r.retransmits += o.retransmits
	r.lost += o.lost
}

// benchJITKnock has every sealer's client (the first numbered first)
// send an initiation to port from its own loopback address 127.X.Y.Z (X =
// netByte), window clients at a time, and waits for each one's response,
// sending a new initiation after 5 s without one (twice at most).
func benchJITKnock(tb testing.TB, port uint16, sealers []*conn.Sealer, window, netByte, first int) benchKnockResult {
	server := net.UDPAddrFromAddrPort(netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), port))
	var next, retransmits, lost atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for w := 0; w < window; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 256)
			for {
				i := int(next.Add(1) - 1)
				if i >= len(sealers) {
					return
				}
				src := netip.AddrFrom4([4]byte{127, byte(netByte), byte((first + i) >> 8), byte(first + i)})
				c, err := net.DialUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(src, 0)), server)
				if err != nil {
					tb.Error(err)
					return
				}
				answered := false
				for try := 0; try < 3 && !answered; try++ {
					if try > 0 {
						retransmits.Add(1)
					}
					c.Write(sealers[i].Seal(uint32(first+i), tai64n.Now()))
					deadline := time.Now().Add(5 * time.Second)
					for !answered {
						c.SetReadDeadline(deadline)
						k, err := c.Read(buf)
						if err != nil { // the deadline: retransmit
							break
						}
						answered = k == conn.MessageResponseSize && buf[0] == conn.MessageResponse
					}
				}
				if !answered {
					lost.Add(1)
				}
				c.Close()
			}
		}()
	}
	wg.Wait()
	return benchKnockResult{elapsed: time.Since(start), retransmits: retransmits.Load(), lost: lost.Load()}
}
