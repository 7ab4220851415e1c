package tests

import (
	"io"
	"net"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/wghooks/wghooks/device"
	"github.com/wghooks/wghooks/internal/testkit"
)

// benchPairLink is one TCP connection through an in-process tunnel: the
// client end in node a, a sink in node b that acknowledges every chunk
// with one byte.
type benchPairLink struct {
	conn net.Conn
	buf  []byte
}

// newBenchPairLink connects a to a sink on b's tunnel address through the
// tunnel between them.
func newBenchPairLink(tb testing.TB, a, b *testkit.Node, chunk int) *benchPairLink {
	tb.Helper()
	ln, err := b.Net.ListenTCPAddrPort(netip.AddrPortFrom(b.Addr, 5001))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { ln.Close() })
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		for {
			if _, err := io.CopyN(io.Discard, c, int64(chunk)); err != nil {
				return
			}
			if _, err := c.Write([]byte{1}); err != nil {
				return
			}
		}
	}()
	c, err := a.Net.DialTCPAddrPort(netip.AddrPortFrom(b.Addr, 5001))
	if err != nil {
		tb.Fatalf("failed to connect through the tunnel to %s: %v", b.Addr, err)
	}
	tb.Cleanup(func() { c.Close() })
	l := &benchPairLink{conn: c, buf: make([]byte, chunk)}
	randRead(l.buf)
	l.transfer(tb) // handshake and TCP slow start happen here, untimed
	return l
}

// transfer sends one chunk and waits until the sink has all of it.
func (l *benchPairLink) transfer(tb testing.TB) time.Duration {
	start := time.Now()
	l.conn.SetDeadline(start.Add(time.Minute))
	if _, err := l.conn.Write(l.buf); err != nil {
		tb.Fatalf("failed to send through the tunnel: %v", err)
	}
	var ack [1]byte
	if _, err := io.ReadFull(l.conn, ack[:]); err != nil {
		tb.Fatalf("failed to read the sink's acknowledgement: %v", err)
	}
	return time.Since(start)
}

// BenchmarkPairThroughput moves TCP bulk data through two in-process
// netstack tunnels over loopback UDP, one with wghooks devices at both
// ends and one with plain upstream devices, alternating chunk by chunk so
// the machine's drift hits both alike. It reports each side's MB/s, the
// ratio wghooks/upstream of the totals (ratio-total), and the median of
// the per-round ratios (ratio): a load spike from elsewhere on a shared
// machine lands in one chunk of one side and swings the totals by ±10 %,
// while the median of adjacent pairs keeps what the tunnels themselves
// cost. Suggested: go test -run '^$' -bench PairThroughput -benchtime 40x
// ./tests
func BenchmarkPairThroughput(b *testing.B) {
	const chunk = 4 << 20
	oa, da := testkit.NewWghooks(b, "198.18.10.1", device.Config{Errorf: b.Logf})
	ob, db := testkit.NewWghooks(b, "198.18.10.2", device.Config{Errorf: b.Logf})
	testkit.AddPeer(b, da, ob, true)
	testkit.AddPeer(b, db, oa, true)
	ua, uda := testkit.NewUpstream(b, "198.18.11.1", nil)
	ub, udb := testkit.NewUpstream(b, "198.18.11.2", nil)
	testkit.AddPeer(b, uda, ub, true)
	testkit.AddPeer(b, udb, ua, true)
	ours := newBenchPairLink(b, oa, ob, chunk)
	theirs := newBenchPairLink(b, ua, ub, chunk)

	var tOurs, tTheirs time.Duration
	ratios := make([]float64, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		var o, u time.Duration
		if i%2 == 0 {
			o = ours.transfer(b)
			u = theirs.transfer(b)
		} else {
			u = theirs.transfer(b)
			o = ours.transfer(b)
		}
		tOurs += o
		tTheirs += u
		ratios = append(ratios, u.Seconds()/o.Seconds())
	}
	b.StopTimer()
	mb := float64(b.N) * chunk / 1e6
	mbOurs, mbTheirs := mb/tOurs.Seconds(), mb/tTheirs.Seconds()
	slices.Sort(ratios)
	b.ReportMetric(mbOurs, "wghooks-MB/s")
	b.ReportMetric(mbTheirs, "upstream-MB/s")
	b.ReportMetric(mbOurs/mbTheirs, "ratio-total")
	b.ReportMetric(ratios[len(ratios)/2], "ratio")
}
