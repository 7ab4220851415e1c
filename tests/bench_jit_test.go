package tests

// Benchmarks of just-in-time peers, each against plain upstream in the
// same run where upstream has a counterpart (scripts/bench/jit.sh runs
// them all):
//
//	BenchmarkJITFirstContact       a brand-new client's first packet to its
//	                               echo, peer from SQLite; upstream: the
//	                               peer preloaded
//	BenchmarkJITKnownPeerHandshakes handshakes/s of known peers through our
//	                               bind (JIT on) vs upstream's
//	BenchmarkJITPeerMissIdentify   authenticated identifications/s/core
//	BenchmarkJITScale              1,000,000-peer store: start-up time and
//	                               RSS with 10,000 peers active, vs
//	                               upstream preloading 65,536 peers

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdh"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	mrand "math/rand/v2"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/blake2s"
	"golang.org/x/crypto/curve25519"
	"golang.zx2c4.com/wireguard/tai64n"

	"github.com/wghooks/wghooks/conn"
	"github.com/wghooks/wghooks/device"
	"github.com/wghooks/wghooks/hooks"
	"github.com/wghooks/wghooks/hooks/sqlstore"
	"github.com/wghooks/wghooks/internal/testkit"
)

// BenchmarkJITFirstContact times a brand-new client's first round trip
// (its first packet, the handshake it triggers, the echo) with the peer
// provisioned from a SQLite store on first contact, against upstream
// with the peer preloaded, sample by sample in one run. It reports p50
// and p99 of each and the clients' retransmitted initiations (goal 0),
// and where our extra time goes: the initiation's arrival to its peer
// installed (decode, lookup, install; p50) and the provider lookup alone
// (mean). Run with -benchtime 1x; JIT_FIRST_CONTACTS sets the samples
// (default 100).
func BenchmarkJITFirstContact(b *testing.B) {
	samples := benchJITEnvInt("JIT_FIRST_CONTACTS", 100)
	store := benchJITStore(b)
	ev := &jitEvents{}
	ours, od := newJITServer(b, store, device.JITConfig{}, ev, nil)
	up, upDev := testkit.NewUpstream(b, "198.18.0.1", nil)
	testkit.ServeEcho(b, up)

	var oursLat, upLat, upAdd []time.Duration
	retransmits := int64(0)
	for i := 0; i < samples; i++ {
		addr := netip.AddrFrom4([4]byte{198, 18, 1 + byte(i/250), byte(i%250 + 1)})
		for _, side := range []struct {
			name   string
			server *testkit.Node
			lat    *[]time.Duration
		}{{"wghooks", ours, &oursLat}, {"upstream", up, &upLat}} {
			// Each client sends from a loopback address of its own, as
			// new clients come from new addresses: from 127.0.0.1 a new
			// client could reuse a port the device knows as a source,
			// which goes to upstream first and is decoded only when
			// unanswered (jit's watchAfter), a case of its own.
			src := netip.AddrFrom4([4]byte{127, 4, byte(i / 250), byte(i%250 + 1)})
			c := newJITClientOn(b, addr.String(), side.server, testkit.NewSourceBind(src))
			var err error
			if side.server == ours {
				err = store.Put(context.Background(), sqlstore.Peer{PeerConfig: hooks.PeerConfig{
					PublicKey: c.Key.Pub, AllowedIPs: []netip.Prefix{netip.PrefixFrom(addr, 32)}}})
			} else {
				began := time.Now()
				err = upDev.IpcSet(testkit.UAPI("public_key", c.Key.PubHex(), "allowed_ip", addr.String()+"/32"))
				upAdd = append(upAdd, time.Since(began))
			}
			if err != nil {
				b.Fatal(err)
			}
			start := time.Now()
			if err := c.Node.Echo(side.server.Addr, 15*time.Second); err != nil {
				b.Fatalf("first contact %d (%s server): %v; client sent %d initiations", i, side.name, err, c.bind.InitSent.Load())
			}
			*side.lat = append(*side.lat, time.Since(start))
			if side.server == ours {
				retransmits += c.bind.InitSent.Load() - 1
			}
			c.dev.Close()
		}
		time.Sleep(20 * time.Millisecond) // let the last client's teardown settle
	}
	benchJITReportLatencies(b, oursLat, upLat)
	b.ReportMetric(float64(retransmits), "retransmits")
	var installed []time.Duration
	ev.mu.Lock()
	for _, e := range ev.evs {
		if e.Kind == hooks.PeerInstalled {
			installed = append(installed, e.Latency)
		}
	}
	ev.mu.Unlock()
	if len(installed) > 0 {
		slices.Sort(installed)
		b.ReportMetric(float64(installed[len(installed)/2].Microseconds())/1000, "ours_installed_p50_ms")
	}
	if st := od.Stats(); st.ProviderLookups > 0 {
		b.ReportMetric(st.ProviderLatencySeconds*1000/float64(st.ProviderLookups), "ours_lookup_mean_ms")
		// Where a first contact's extra time goes, beside the lookup:
		// authenticating the initiation (es and ss), and the install,
		// whose core is upstream adding a peer, measured on its own in
		// the same run (upstream_peer_add_mean_ms).
		if st.InitiationsDecoded > 0 && st.InstallTransactions > 0 {
			b.ReportMetric(st.DecodeSeconds*1000/float64(st.InitiationsDecoded), "ours_decode_mean_ms")
			b.ReportMetric(st.InstallSeconds*1000/float64(st.InstallTransactions), "ours_install_mean_ms")
		}
	}
	if len(upAdd) > 0 {
		var sum time.Duration
		for _, d := range upAdd {
			sum += d
		}
		b.ReportMetric(float64(sum.Microseconds())/1000/float64(len(upAdd)), "upstream_peer_add_mean_ms")
	}
	b.ReportMetric(benchX25519Millis(b), "x25519_ms")
}

// benchX25519Millis is the time of one X25519 scalar multiplication on
// this machine now, in ms: the unit a first contact's costs are counted in.
func benchX25519Millis(b *testing.B) float64 {
	priv, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	pub := testkit.NewKeypair().Pub
	peer, err := ecdh.X25519().NewPublicKey(pub[:])
	if err != nil {
		b.Fatal(err)
	}
	const n = 200
	began := time.Now()
	for i := 0; i < n; i++ {
		if _, err := priv.ECDH(peer); err != nil {
			b.Fatal(err)
		}
	}
	return float64(time.Since(began).Microseconds()) / 1000 / n
}

// benchJITStore opens an empty SQLite store in the benchmark's temp dir.
func benchJITStore(b *testing.B) *sqlstore.Store {
	store, err := sqlstore.Open(filepath.Join(b.TempDir(), "peers.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { store.Close() })
	return store
}

// benchJITReportLatencies reports p50 and p99 of our first-contact
// latencies and of upstream's with the peer preloaded, in milliseconds.
func benchJITReportLatencies(b *testing.B, ours, upstream []time.Duration) {
	p := func(l []time.Duration, q float64) float64 {
		s := slices.Clone(l)
		slices.Sort(s)
		return float64(s[int(q*float64(len(s)-1))].Microseconds()) / 1000
	}
	b.ReportMetric(p(ours, 0.5), "ours_p50_ms")
	b.ReportMetric(p(ours, 0.99), "ours_p99_ms")
	b.ReportMetric(p(upstream, 0.5), "upstream_preloaded_p50_ms")
	b.ReportMetric(p(upstream, 0.99), "upstream_preloaded_p99_ms")
}

// BenchmarkJITKnownPeerHandshakes measures handshakes per second of
// peers the device already holds, answered by our device (just-in-time
// peers on, so every initiation passes the peer-miss hook) and by plain
// upstream, both at once in each round. Both responders share one
// private key and 256 peers; initiators keep a window of initiations in
// flight from 4 UDP sources (below upstream's under-load threshold).
// Run with -benchtime 1x; JIT_HS_ROUNDS (default 10) and JIT_HS_SECONDS
// (default 1) set the length.
func BenchmarkJITKnownPeerHandshakes(b *testing.B) {
	const peers = 256
	rounds := benchJITEnvInt("JIT_HS_ROUNDS", 10)
	secs := benchJITEnvInt("JIT_HS_SECONDS", 1)

	ours, od := newJITServer(b, newJITProvider(), device.JITConfig{}, nil, nil)
	up, ud := testkit.NewUpstream(b, "198.18.0.2", nil)
	serverKey := ours.Key
	if err := ud.IpcSet(testkit.UAPI("private_key", serverKey.PrivHex())); err != nil {
		b.Fatal(err)
	}
	sealers := make([]*conn.Sealer, peers)
	var conf strings.Builder
	eph := testkit.NewKeypair()
	for i := range sealers {
		k := testkit.NewKeypair()
		s, err := conn.NewSealer(k.Pub, k.Priv, serverKey.Pub, eph.Priv)
		if err != nil {
			b.Fatal(err)
		}
		sealers[i] = s
		fmt.Fprintf(&conf, "public_key=%s\nallowed_ip=10.%d.%d.%d/32\n", k.PubHex(), i>>16&255, i>>8&255, i&255)
	}
	if err := od.IpcSet(conf.String()); err != nil {
		b.Fatal(err)
	}
	if err := ud.IpcSet(conf.String()); err != nil {
		b.Fatal(err)
	}
	oursRun := newBenchHandshaker(b, ours.Port, sealers)
	upRun := newBenchHandshaker(b, up.Port, sealers)
	oursRun.run(time.Second) // warm-up: new sources, page faults
	upRun.run(time.Second)

	var oursTotal, upTotal float64
	var ratios []float64
	for r := 0; r < rounds; r++ {
		// Both at once: the machine's drift hits both alike, and each
		// side's share of the CPU goes as its cost per handshake.
		var o, u float64
		var wg sync.WaitGroup
		wg.Add(2)
		go func() { defer wg.Done(); o = oursRun.run(time.Duration(secs) * time.Second) }()
		go func() { defer wg.Done(); u = upRun.run(time.Duration(secs) * time.Second) }()
		wg.Wait()
		oursTotal += o
		upTotal += u
		ratios = append(ratios, o/u)
		b.Logf("round %d: ours %.0f/s, upstream %.0f/s", r, o, u)
	}
	slices.Sort(ratios)
	b.ReportMetric(oursTotal/float64(rounds), "ours_hs/s")
	b.ReportMetric(upTotal/float64(rounds), "upstream_hs/s")
	b.ReportMetric(ratios[len(ratios)/2], "ratio_median")
	b.ReportMetric(oursTotal/upTotal, "ratio_total")
	if cookies := oursRun.cookies.Load() + upRun.cookies.Load(); cookies > 0 {
		b.Logf("%d cookie replies: a responder was under load", cookies)
	}
}

// benchHandshaker sends crafted initiations of known peers to one
// responder and counts its responses.
type benchHandshaker struct {
	socks   []*net.UDPConn
	sealers []*conn.Sealer
	next    atomic.Uint64 // next initiation: peer next%len, round next/len
	base    time.Time     // timestamps grow from here
	cookies atomic.Int64
}

func newBenchHandshaker(tb testing.TB, port uint16, sealers []*conn.Sealer) *benchHandshaker {
	h := &benchHandshaker{sealers: sealers, base: time.Now()}
	for i := 0; i < 4; i++ {
		c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), port)))
		if err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(func() { c.Close() })
		h.socks = append(h.socks, c)
	}
	return h
}

func (h *benchHandshaker) initiation() []byte {
	i := h.next.Add(1)
	n := uint64(len(h.sealers))
	ts := jitStamp(h.base.Add(time.Duration(i/n+1) * time.Microsecond))
	return h.sealers[i%n].Seal(uint32(i), ts)
}

// run keeps 8 initiations in flight per source for d and returns the
// responses per second.
func (h *benchHandshaker) run(d time.Duration) float64 {
	const window = 8
	var responses atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	end := start.Add(d)
	for _, c := range h.socks {
		wg.Add(1)
		go func(c *net.UDPConn) {
			defer wg.Done()
			buf := make([]byte, 256)
			for i := 0; i < window; i++ {
				c.Write(h.initiation())
			}
			for time.Now().Before(end) {
				c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
				n, err := c.Read(buf)
				switch {
				case err != nil: // lost: replace it
				case n == conn.MessageResponseSize && buf[0] == conn.MessageResponse:
					responses.Add(1)
				case n == conn.MessageCookieReplySize && buf[0] == conn.MessageCookieReply:
					h.cookies.Add(1)
				default:
					continue
				}
				c.Write(h.initiation())
			}
		}(c)
	}
	wg.Wait()
	// Drain what is still in flight so the next round starts clean.
	for _, c := range h.socks {
		buf := make([]byte, 256)
		for {
			c.SetReadDeadline(time.Now().Add(30 * time.Millisecond))
			if _, err := c.Read(buf); err != nil {
				break
			}
		}
	}
	return float64(responses.Load()) / time.Since(start).Seconds()
}

// BenchmarkJITPeerMissIdentify measures authenticated peer-miss
// identifications (mac1, es, ss: conn.Identity.Decode) per second on one
// core.
func BenchmarkJITPeerMissIdentify(b *testing.B) {
	server, client := testkit.NewKeypair(), testkit.NewKeypair()
	id, err := conn.NewIdentity(server.Priv)
	if err != nil {
		b.Fatal(err)
	}
	msg, err := conn.SealInitiation(client.Priv, server.Pub, testkit.NewKeypair().Priv, 1, tai64n.Now())
	if err != nil {
		b.Fatal(err)
	}
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		if _, err := id.Decode(msg); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "identifications/s/core")
}

// Scale: each side runs in a child process of this test binary (so each
// RSS is its own), started by BenchmarkJITScale.
const (
	benchJITScaleEnv    = "WGTEST_JIT_SCALE_ROLE"
	benchJITScaleDB     = "WGTEST_JIT_SCALE_DB"
	benchJITScaleActive = "WGTEST_JIT_SCALE_ACTIVE"
	benchJITScalePeers  = "WGTEST_JIT_SCALE_PEERS"
)

// BenchmarkJITScale builds a store of JIT_SCALE_STORE peers (default
// 1,000,000), then in child processes: our device starts on it and
// JIT_SCALE_ACTIVE of them (default 10,000) handshake in; upstream
// preloads JIT_SCALE_UPSTREAM peers (default 65,536, its MaxPeers).
// Reports start-up times and RSS. Run with -benchtime 1x.
func BenchmarkJITScale(b *testing.B) {
	storeSize := benchJITEnvInt("JIT_SCALE_STORE", 1_000_000)
	active := benchJITEnvInt("JIT_SCALE_ACTIVE", 10_000)
	upstreamPeers := benchJITEnvInt("JIT_SCALE_UPSTREAM", 65_536)
	path := filepath.Join(b.TempDir(), "peers.db")
	t0 := time.Now()
	if err := benchJITBuildStore(path, storeSize, active); err != nil {
		b.Fatal(err)
	}
	b.Logf("built a %d-peer store in %v", storeSize, time.Since(t0).Round(time.Millisecond))

	ours := benchJITScaleChild(b, "ours", benchJITScaleDB+"="+path, benchJITScaleActive+"="+strconv.Itoa(active))
	up := benchJITScaleChild(b, "upstream", benchJITScalePeers+"="+strconv.Itoa(upstreamPeers))
	b.ReportMetric(ours["ready_ms"], "ours_start_ms")
	b.ReportMetric(ours["rss_mib"], "ours_rss_MiB")
	b.ReportMetric(ours["active"], "ours_active_peers")
	b.ReportMetric(ours["activate_s"], "ours_activate_s")
	b.ReportMetric(up["ready_ms"], "upstream_start_ms")
	b.ReportMetric(up["rss_mib"], "upstream_rss_MiB")
	b.ReportMetric(up["peers"], "upstream_peers")
	b.ReportMetric(ours["rss_mib"]/up["rss_mib"], "rss_ratio")
	b.ReportMetric(ours["ready_ms"]/up["ready_ms"], "start_ratio")
}

// benchJITKey derives the i-th active peer's private key, the same in
// parent and child.
func benchJITKey(i int) (priv, pub [32]byte) {
	priv = blake2s.Sum256([]byte("wghooks jit bench " + strconv.Itoa(i)))
	priv[0] &= 248
	priv[31] = (priv[31] & 127) | 64
	p, _ := curve25519.X25519(priv[:], curve25519.Basepoint)
	copy(pub[:], p)
	return priv, pub
}

func benchJITActiveAddr(i int) netip.Addr {
	return netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
}

// benchJITBuildStore writes size peers, the first active of them real
// keys (benchJITKey), the rest random, in key order (fast B-tree
// appends).
func benchJITBuildStore(path string, size, active int) error {
	s, err := sqlstore.Open(path)
	if err != nil {
		return err
	}
	defer s.Close()
	peers := make([]sqlstore.Peer, size)
	rng := mrand.NewChaCha8([32]byte{'w', 'g'})
	var wg sync.WaitGroup
	for w := 0; w < runtime.GOMAXPROCS(0); w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := w; i < active && i < size; i += runtime.GOMAXPROCS(0) {
				_, peers[i].PublicKey = benchJITKey(i)
			}
		}(w)
	}
	wg.Wait()
	for i := range peers {
		if i >= active {
			rng.Read(peers[i].PublicKey[:])
		}
		peers[i].AllowedIPs = []netip.Prefix{netip.PrefixFrom(benchJITActiveAddr(i), 32)}
	}
	slices.SortFunc(peers, func(a, b sqlstore.Peer) int { return bytes.Compare(a.PublicKey[:], b.PublicKey[:]) })
	for len(peers) > 0 {
		n := min(len(peers), 100_000)
		if err := s.Put(context.Background(), peers[:n]...); err != nil {
			return err
		}
		peers = peers[n:]
	}
	return nil
}

// benchJITScaleChild runs one side and parses its "key=value" result line.
func benchJITScaleChild(b *testing.B, role string, env ...string) map[string]float64 {
	b.Helper()
	cmd := exec.Command(os.Args[0], "-test.run", "^TestJITScaleChild$", "-test.count", "1", "-test.timeout", "10m")
	cmd.Env = append(append(os.Environ(), benchJITScaleEnv+"="+role), env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		b.Fatalf("%s child: %v\n%s\n%s", role, err, out, stderr.String())
	}
	res := map[string]float64{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		line, ok := strings.CutPrefix(sc.Text(), "JITSCALE ")
		if !ok {
			continue
		}
		for _, f := range strings.Fields(line) {
			k, v, _ := strings.Cut(f, "=")
			res[k], _ = strconv.ParseFloat(v, 64)
		}
	}
	if len(res) == 0 {
		b.Fatalf("%s child printed no result:\n%s", role, out)
	}
	b.Logf("%s: %v", role, res)
	return res
}

// TestJITScaleChild is one side of BenchmarkJITScale; it only runs as
// that benchmark's child.
func TestJITScaleChild(t *testing.T) {
	switch os.Getenv(benchJITScaleEnv) {
	case "ours":
		benchJITScaleOurs(t)
	case "upstream":
		benchJITScaleUpstream(t)
	default:
		t.Skip("runs only as BenchmarkJITScale's child")
	}
}

func benchJITScaleOurs(t *testing.T) {
	active, _ := strconv.Atoi(os.Getenv(benchJITScaleActive))
	start := time.Now()
	store, err := sqlstore.Open(os.Getenv(benchJITScaleDB))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	// The handshake guard is off: the active peers arrive from new
	// addresses as fast as the device takes them, a mass arrival the guard
	// would slow with cookies (these senders do not answer them); this
	// measures start-up and memory.
	server, d := testkit.NewWghooks(t, "198.18.0.1", device.Config{JIT: device.JITConfig{
		Provider: store, MaxPeers: active + 1000, IdleTimeout: -1, RevalidateInterval: -1,
	}, HA: device.HAConfig{FlowEscapeOff: true}, Guard: device.GuardConfig{Rate: -1}})
	ready := time.Since(start)

	// Bring the active peers in through real handshakes, each from its
	// own loopback address (within the per-source decode rate), keeping
	// a few in flight.
	t1 := time.Now()
	eph := testkit.NewKeypair()
	const inflight = 16
	settled := func() uint64 {
		st := d.Stats()
		return st.PeersInstalled + st.ProviderErrors
	}
	// wait waits until at most n initiations are unsettled, or until
	// nothing has settled for 2 s (a lost one is not resent).
	lost := uint64(0)
	wait := func(sent, n uint64) {
		last, progress := settled(), time.Now()
		for sent-lost-last > n {
			time.Sleep(200 * time.Microsecond)
			if now := settled(); now != last {
				last, progress = now, time.Now()
			} else if time.Since(progress) > 2*time.Second {
				lost = sent - last - n
				return
			}
		}
	}
	for i := 0; i < active; i++ {
		wait(uint64(i), inflight)
		priv, pub := benchJITKey(i)
		s, err := conn.NewSealer(pub, priv, server.Key.Pub, eph.Priv)
		if err != nil {
			t.Fatal(err)
		}
		src := netip.AddrFrom4([4]byte{127, 1, byte(i >> 8), byte(i)})
		c, err := net.DialUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(src, 0)),
			net.UDPAddrFromAddrPort(netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), server.Port)))
		if err != nil {
			t.Fatal(err)
		}
		c.Write(s.Seal(uint32(i), tai64n.Now()))
		c.Close()
	}
	wait(uint64(active), 0)
	activate := time.Since(t1)
	st := d.Stats()
	fmt.Printf("JITSCALE ready_ms=%.1f active=%d activate_s=%.1f rss_mib=%.1f goroutines=%d\n",
		float64(ready.Microseconds())/1000, st.PeersActive, activate.Seconds(), benchJITRSS(), runtime.NumGoroutine())
}

func benchJITScaleUpstream(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv(benchJITScalePeers))
	var conf strings.Builder
	var pk [32]byte
	for i := 0; i < n; i++ {
		rand.Read(pk[:])
		conf.WriteString("public_key=" + hex.EncodeToString(pk[:]) + "\nallowed_ip=" + benchJITActiveAddr(i).String() + "/32\n")
	}
	start := time.Now()
	_, d := testkit.NewUpstream(t, "198.18.0.1", nil)
	if err := d.IpcSet(conf.String()); err != nil {
		t.Fatal(err)
	}
	ready := time.Since(start)
	conf.Reset()
	fmt.Printf("JITSCALE ready_ms=%.1f peers=%d rss_mib=%.1f goroutines=%d\n",
		float64(ready.Microseconds())/1000, n, benchJITRSS(), runtime.NumGoroutine())
}

// benchJITRSS returns the process's resident set in MiB after a GC.
func benchJITRSS() float64 {
	runtime.GC()
	debug.FreeOSMemory()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			return kb / 1024
		}
	}
	return 0
}

func benchJITEnvInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}
