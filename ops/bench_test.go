package ops

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wghooks/wghooks/internal/testkit"
)

// BenchmarkMetricsScrape measures /metrics on a device holding
// METRICS_BENCH_PEERS peers (default 10,000, each with an IPv4 /32 and an
// IPv6 /128, as a gateway gives them), one of them a real client sending
// traffic: the time, the bytes served (plain and gzip, as Prometheus asks)
// and the bytes allocated per scrape, the first scrape (labels formatted)
// apart; each of these reads upstream's counters. Then, with scrapes
// running back to back (reading at most once a second, as served), the
// slowest ping through the tunnel, `wg show` (a get) and `wg set` (one
// peer's allowed IP) of 20 each, against the same with no scrape running:
// what scraping costs the data path and the control socket. Run with
// -benchtime 10x.
func BenchmarkMetricsScrape(b *testing.B) {
	n := 10000
	if s := os.Getenv("METRICS_BENCH_PEERS"); s != "" {
		var err error
		if n, err = strconv.Atoi(s); err != nil {
			b.Fatalf("METRICS_BENCH_PEERS=%q: %v", s, err)
		}
	}
	sd, cn, sn, _ := newServedPair(b)
	var conf strings.Builder
	for i := range n - 3 {
		var k [32]byte
		rand.Read(k[:])
		fmt.Fprintf(&conf, "public_key=%s\nallowed_ip=10.%d.%d.%d/32\nallowed_ip=fd00:7::%x/128\n",
			hex.EncodeToString(k[:]), byte(i>>16), byte(i>>8), byte(i), i)
		if i%1000 == 999 || i == n-4 {
			if err := sd.IpcSet(conf.String()); err != nil {
				b.Fatal(err)
			}
			conf.Reset()
		}
	}
	if got := len(sd.Peers()); got != n {
		b.Fatalf("device holds %d peers, want %d", got, n)
	}
	served := peerReadInterval
	defer func() { peerReadInterval = served }()
	peerReadInterval = 0 // every scrape reads

	h := Handler(sd, Config{Interface: "wg0", NoProcessMetrics: true})
	scrape := func(gzip bool) int {
		r := httptest.NewRequest("GET", "/metrics", nil)
		if gzip {
			r.Header.Set("Accept-Encoding", "gzip")
		}
		w := &countingWriter{header: http.Header{}}
		h.ServeHTTP(w, r)
		if w.code != 0 && w.code != 200 {
			b.Fatalf("/metrics = %d", w.code)
		}
		return w.n
	}
	t0 := time.Now()
	plain := scrape(false)
	first := time.Since(t0)
	gz := scrape(true)

	var read time.Duration
	for range 3 {
		t := time.Now()
		if _, err := sd.PeerStats(); err != nil {
			b.Fatal(err)
		}
		read += time.Since(t)
	}
	read /= 3

	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for b.Loop() {
		scrape(false)
	}
	per := time.Since(start) / time.Duration(b.N)
	b.StopTimer()

	worst := func() (ping, get, set time.Duration) {
		for range 20 {
			t := time.Now()
			if err := cn.Ping(sn.Addr, 5*time.Second); err != nil {
				b.Fatalf("ping: %v", err)
			}
			ping = max(ping, time.Since(t))
			t = time.Now()
			if _, err := sd.IpcGet(); err != nil {
				b.Fatal(err)
			}
			get = max(get, time.Since(t))
			t = time.Now()
			// A small `wg set`: the client's allowed IP, set again.
			if err := sd.IpcSet(testkit.UAPI("public_key", cn.Key.PubHex(), "replace_allowed_ips", "true", "allowed_ip", "198.18.9.2/32")); err != nil {
				b.Fatal(err)
			}
			set = max(set, time.Since(t))
			time.Sleep(10 * time.Millisecond)
		}
		return
	}
	idlePing, idleGet, idleSet := worst()
	// Scrapes back to back, as many scrapers would, with the bound the
	// handler serves them under: one read a second.
	peerReadInterval = served
	var stop atomic.Bool
	done := make(chan int)
	go func() {
		k := 0
		for !stop.Load() {
			scrape(false)
			k++
		}
		done <- k
	}()
	busyPing, busyGet, busySet := worst()
	stop.Store(true)
	scrapes := <-done

	ms := func(d time.Duration) float64 { return float64(d) / 1e6 }
	b.ReportMetric(ms(per), "ms/scrape")
	b.ReportMetric(ms(first), "first_ms")
	b.ReportMetric(ms(read), "read_ms")
	b.ReportMetric(float64(plain), "body_B")
	b.ReportMetric(float64(gz), "gzip_B")
	b.ReportMetric(float64(n), "peers")
	b.Logf("%d peers: scrape %.1f ms (first %.1f ms; reading the counters %.1f ms of it), %d B served (%d B gzip); slowest of 20 idle / while %d scrapes ran (reading once a second): ping %.1f / %.1f ms, wg show %.1f / %.1f ms, wg set %.1f / %.1f ms",
		n, ms(per), ms(first), ms(read), plain, gz, scrapes, ms(idlePing), ms(busyPing), ms(idleGet), ms(busyGet), ms(idleSet), ms(busySet))
}

// countingWriter is a ResponseWriter that counts the body and drops it.
type countingWriter struct {
	header http.Header
	code   int
	n      int
}

func (w *countingWriter) Header() http.Header  { return w.header }
func (w *countingWriter) WriteHeader(code int) { w.code = code }
func (w *countingWriter) Write(p []byte) (int, error) {
	w.n += len(p)
	return len(p), nil
}

var _ io.Writer = (*countingWriter)(nil)
