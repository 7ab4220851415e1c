package tests

// Benchmarks of the just-in-time outbound side, each against plain
// upstream in the same run:
//
//	BenchmarkJITOutboundFirstPacket  the gateway's first packet to a client
//	                                 it does not hold, to that packet's
//	                                 echo (lookup by address in SQLite,
//	                                 install, handshake by the gateway);
//	                                 upstream: the client preloaded
//	BenchmarkJITOutboundThroughput   TCP bulk data through a wghooks pair
//	                                 with the outbound side on (its read
//	                                 filter sees every packet), one with
//	                                 it off, and an upstream pair

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/wghooks/wghooks/device"
	"github.com/wghooks/wghooks/hooks/sqlstore"
	"github.com/wghooks/wghooks/internal/testkit"
)

// BenchmarkJITOutboundFirstPacket times the gateway's first round trip to
// a client: with the outbound side, the client is in a SQLite store only
// and gets installed by that packet; with upstream, the client is
// preloaded with its endpoint. Both pay for one handshake started by the
// gateway. Reports p50 and p99 of each. Run with -benchtime 1x;
// JIT_OUTBOUND_SAMPLES sets the samples (default 50).
func BenchmarkJITOutboundFirstPacket(b *testing.B) {
	samples := benchJITEnvInt("JIT_OUTBOUND_SAMPLES", 50)
	store := benchJITStore(b)
	ours, od := newJITServer(b, store, device.JITConfig{Outbound: true}, nil, nil)
	up, upDev := testkit.NewUpstream(b, "198.18.0.1", nil)

	var oursLat, upLat []time.Duration
	for i := 0; i < samples; i++ {
		addr := netip.AddrFrom4([4]byte{198, 18, 1 + byte(i/250), byte(i%250 + 1)})
		for _, side := range []struct {
			gw  *testkit.Node
			lat *[]time.Duration
		}{{ours, &oursLat}, {up, &upLat}} {
			c := benchJITOutboundClient(b, addr.String(), side.gw)
			cfg := jitOutboundPeer(c)
			var err error
			if side.gw == ours {
				err = store.Put(context.Background(), sqlstore.Peer{PeerConfig: cfg})
			} else {
				err = upDev.IpcSet(testkit.UAPI("public_key", c.Key.PubHex(), "allowed_ip", cfg.AllowedIPs[0].String(), "endpoint", cfg.Endpoint.String()))
			}
			if err != nil {
				b.Fatal(err)
			}
			start := time.Now()
			if err := side.gw.Echo(addr, 15*time.Second); err != nil {
				b.Fatalf("sample %d: first packet from the gateway: %v", i, err)
			}
			*side.lat = append(*side.lat, time.Since(start))
			c.dev.Close()
		}
	}
	if st := od.Stats(); st.OutboundInstalls != uint64(samples) {
		b.Fatalf("%d outbound installs, want %d", st.OutboundInstalls, samples)
	}
	benchJITReportLatencies(b, oursLat, upLat)
}

// benchJITOutboundClient is jitOutboundClient for benchmarks.
func benchJITOutboundClient(b *testing.B, addr string, gw *testkit.Node) *jitClient {
	b.Helper()
	n, d := testkit.NewUpstream(b, addr, nil)
	testkit.AddPeer(b, d, gw, false)
	testkit.ServeEcho(b, n)
	return &jitClient{Node: n, dev: d}
}

// BenchmarkJITOutboundThroughput moves TCP bulk data through three
// in-process pairs, alternating chunk by chunk: wghooks with the outbound
// side on at both ends (every packet read from the TUN passes its
// filter), wghooks with it off, and plain upstream. Reports MB/s of each
// and the ratios to upstream. Suggested: -benchtime 30x.
func BenchmarkJITOutboundThroughput(b *testing.B) {
	const chunk = 4 << 20
	p := newJITOutboundProvider()
	var onDevs []*device.Device
	on := func(addr string) (*testkit.Node, *device.Device) {
		n, d := testkit.NewWghooks(b, addr, device.Config{Errorf: b.Logf, JIT: device.JITConfig{Provider: p, Outbound: true}})
		onDevs = append(onDevs, d)
		return n, d
	}
	off := func(addr string) (*testkit.Node, *device.Device) {
		return testkit.NewWghooks(b, addr, device.Config{Errorf: b.Logf})
	}
	pair := func(mk func(string) (*testkit.Node, *device.Device), a, bAddr string) *benchPairLink {
		na, da := mk(a)
		nb, db := mk(bAddr)
		testkit.AddPeer(b, da, nb, true)
		testkit.AddPeer(b, db, na, true)
		return newBenchPairLink(b, na, nb, chunk)
	}
	links := []*benchPairLink{pair(on, "198.18.10.1", "198.18.10.2"), pair(off, "198.18.11.1", "198.18.11.2")}
	ua, uda := testkit.NewUpstream(b, "198.18.12.1", nil)
	ub, udb := testkit.NewUpstream(b, "198.18.12.2", nil)
	testkit.AddPeer(b, uda, ub, true)
	testkit.AddPeer(b, udb, ua, true)
	links = append(links, newBenchPairLink(b, ua, ub, chunk))

	times := make([]time.Duration, len(links))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for j := range links {
			k := (i + j) % len(links) // rotate who goes first
			times[k] += links[k].transfer(b)
		}
	}
	b.StopTimer()
	mb := float64(b.N) * chunk / 1e6
	rate := func(k int) float64 { return mb / times[k].Seconds() }
	b.ReportMetric(rate(0), "outbound-on-MB/s")
	b.ReportMetric(rate(1), "outbound-off-MB/s")
	b.ReportMetric(rate(2), "upstream-MB/s")
	b.ReportMetric(rate(0)/rate(2), "on/upstream")
	b.ReportMetric(rate(1)/rate(2), "off/upstream")
	for _, d := range onDevs {
		if n := d.Stats().ProviderLookups; n != 0 {
			b.Fatalf("the provider was asked %d times; the pair's peers are static", n)
		}
	}
}
