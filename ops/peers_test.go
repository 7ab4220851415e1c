package ops

import (
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/wghooks/wghooks/device"
	"github.com/wghooks/wghooks/internal/testkit"
)

// scrapeFamilies parses h's /metrics.
func scrapeFamilies(t *testing.T, h http.Handler) map[string]*dto.MetricFamily {
	t.Helper()
	code, body := get(t, h, "/metrics")
	if code != 200 {
		t.Fatalf("/metrics = %d: %s", code, body)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("failed to parse /metrics: %v\n%s", err, body)
	}
	return fams
}

func labelOf(m *dto.Metric, name string) string {
	for _, l := range m.Label {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

// peerSeriesByKey indexes a per-peer family by its public_key label.
func peerSeriesByKey(t *testing.T, fams map[string]*dto.MetricFamily, name string, typ dto.MetricType) map[string]*dto.Metric {
	t.Helper()
	f := fams[name]
	if f == nil {
		t.Fatalf("/metrics lacks %s", name)
	}
	if f.GetType() != typ {
		t.Fatalf("%s is a %v, want a %v (as prometheus_wireguard_exporter serves it)", name, f.GetType(), typ)
	}
	out := map[string]*dto.Metric{}
	for _, m := range f.Metric {
		out[labelOf(m, "public_key")] = m
	}
	return out
}

func value(m *dto.Metric) float64 {
	if m.Counter != nil {
		return m.Counter.GetValue()
	}
	return m.Gauge.GetValue()
}

// newServedPair is a wghooks server with an upstream client as its peer
// and two more peers (one with two allowed IPs, one with none) that never
// handshake; traffic has flowed when it returns.
func newServedPair(t testing.TB) (server *device.Device, client *testkit.Node, serverNode *testkit.Node, idle [2]testkit.Keypair) {
	t.Helper()
	sn, sd := testkit.NewWghooks(t, "198.18.9.1", device.Config{HA: device.HAConfig{FlowEscapeOff: true}})
	cn, cd := testkit.NewUpstream(t, "198.18.9.2", nil)
	testkit.AddPeer(t, sd, cn, false)
	testkit.AddPeer(t, cd, sn, true)
	idle = [2]testkit.Keypair{testkit.NewKeypair(), testkit.NewKeypair()}
	if err := sd.IpcSet(testkit.UAPI("public_key", idle[0].PubHex(), "allowed_ip", "198.18.9.64/26", "allowed_ip", "fd00:9::/64",
		"public_key", idle[1].PubHex())); err != nil {
		t.Fatal(err)
	}
	if _, err := cn.PingUntil(sn.Addr, time.Second, 20*time.Second); err != nil {
		t.Fatal(err)
	}
	return sd, cn, sn, idle
}

// TestPeerSeriesAsWgShowsThem: the per-peer series have the names,
// types, labels and values prometheus_wireguard_exporter gives them from
// `wg show dump`: base64 keys, comma-joined allowed IPs ("(none)" when
// empty), byte counters and the handshake's Unix second (0 when none),
// the same numbers the get reply gives.
func TestPeerSeriesAsWgShowsThem(t *testing.T) {
	sd, cn, _, idle := newServedPair(t)
	get, err := sd.IpcGet()
	if err != nil {
		t.Fatal(err)
	}
	fams := scrapeFamilies(t, Handler(sd, Config{Interface: "wg9", NoProcessMetrics: true}))
	sent := peerSeriesByKey(t, fams, "wireguard_sent_bytes_total", dto.MetricType_COUNTER)
	recv := peerSeriesByKey(t, fams, "wireguard_received_bytes_total", dto.MetricType_COUNTER)
	hs := peerSeriesByKey(t, fams, "wireguard_latest_handshake_seconds", dto.MetricType_GAUGE)

	b64 := func(k [32]byte) string { return base64.StdEncoding.EncodeToString(k[:]) }
	num := func(pk [32]byte, key string) float64 {
		n, err := strconv.ParseFloat(testkit.PeerValueOf(get, pk, key), 64)
		if err != nil {
			t.Fatalf("get reply has no %s for a peer", key)
		}
		return n
	}
	for _, p := range []struct {
		key     [32]byte
		allowed string
	}{
		{cn.Key.Pub, "198.18.9.2/32"},
		{idle[0].Pub, "198.18.9.64/26,fd00:9::/64"},
		{idle[1].Pub, "(none)"},
	} {
		k := b64(p.key)
		for name, series := range map[string]map[string]*dto.Metric{"sent": sent, "received": recv, "handshake": hs} {
			m := series[k]
			if m == nil {
				t.Fatalf("no %s series for peer %s", name, k)
			}
			if got := labelOf(m, "allowed_ips"); got != p.allowed {
				t.Errorf("%s of %s: allowed_ips=%q, want %q", name, k, got, p.allowed)
			}
			if got := labelOf(m, "interface"); got != "wg9" {
				t.Errorf("%s of %s: interface=%q, want wg9", name, k, got)
			}
		}
		if got, want := value(sent[k]), num(p.key, "tx_bytes"); got != want {
			t.Errorf("sent of %s = %v, get reply tx_bytes = %v", k, got, want)
		}
		if got, want := value(recv[k]), num(p.key, "rx_bytes"); got != want {
			t.Errorf("received of %s = %v, get reply rx_bytes = %v", k, got, want)
		}
		if got, want := value(hs[k]), num(p.key, "last_handshake_time_sec"); got != want {
			t.Errorf("latest handshake of %s = %v, get reply = %v", k, got, want)
		}
	}
	if v := value(sent[b64(cn.Key.Pub)]); v == 0 {
		t.Error("the client's peer sent no bytes after a ping")
	}
	if v := value(hs[b64(cn.Key.Pub)]); time.Since(time.Unix(int64(v), 0)) > time.Minute {
		t.Errorf("the client's latest handshake is %v, not a recent Unix time", v)
	}
	if f := fams["wireguard_peers_total"]; f == nil || value(f.Metric[0]) != 3 || labelOf(f.Metric[0], "interface") != "wg9" {
		t.Errorf("wireguard_peers_total = %v, want 3 on wg9", f)
	}
	if f := fams["wghooks_peer_series_omitted"]; f == nil || value(f.Metric[0]) != 0 {
		t.Errorf("wghooks_peer_series_omitted = %v, want 0", f)
	}
}

// TestPeerSeriesCapped: past the cap, peers with a handshake are kept and
// the gauge says how many were left out; a negative cap turns the series
// off and still counts the peers.
func TestPeerSeriesCapped(t *testing.T) {
	sd, cn, _, _ := newServedPair(t)
	fams := scrapeFamilies(t, Handler(sd, Config{Interface: "wg9", NoProcessMetrics: true, MaxPeers: 1}))
	hs := peerSeriesByKey(t, fams, "wireguard_latest_handshake_seconds", dto.MetricType_GAUGE)
	if _, ok := hs[base64.StdEncoding.EncodeToString(cn.Key.Pub[:])]; len(hs) != 1 || !ok {
		t.Errorf("capped at 1: series for %d peers (the one with a handshake: %v), want just it", len(hs), ok)
	}
	if f := fams["wghooks_peer_series_omitted"]; f == nil || value(f.Metric[0]) != 2 {
		t.Errorf("wghooks_peer_series_omitted = %v, want 2", f)
	}

	fams = scrapeFamilies(t, Handler(sd, Config{NoProcessMetrics: true, MaxPeers: -1}))
	if f := fams["wireguard_sent_bytes_total"]; f != nil {
		t.Errorf("per-peer series off, still %d of them", len(f.Metric))
	}
	if f := fams["wireguard_peers_total"]; f == nil || value(f.Metric[0]) != 3 {
		t.Errorf("wireguard_peers_total = %v with per-peer series off, want 3", f)
	}
}

// TestPeerSeriesWhileTrafficAndConfiguration: scrapes back to back do not
// keep traffic, gets or sets from completing.
func TestPeerSeriesWhileTrafficAndConfiguration(t *testing.T) {
	sd, cn, sn, _ := newServedPair(t)
	h := Handler(sd, Config{NoProcessMetrics: true})
	stop := make(chan struct{})
	done := make(chan int)
	go func() {
		n := 0
		for {
			select {
			case <-stop:
				done <- n
				return
			default:
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
			n++
		}
	}()
	for i := range 20 {
		if err := cn.Ping(sn.Addr, 5*time.Second); err != nil {
			t.Errorf("ping %d while scraping: %v", i, err)
		}
		if _, err := sd.IpcGet(); err != nil {
			t.Errorf("get %d while scraping: %v", i, err)
		}
		k := testkit.NewKeypair()
		if err := sd.IpcSet(testkit.UAPI("public_key", k.PubHex(), "allowed_ip", "198.18.10."+strconv.Itoa(i)+"/32")); err != nil {
			t.Errorf("set %d while scraping: %v", i, err)
		}
	}
	close(stop)
	if n := <-done; n == 0 {
		t.Error("no scrape completed")
	}
	if got := len(sd.Peers()); got != 23 {
		t.Errorf("device holds %d peers, want 23", got)
	}
}

// TestMetricsToken: with a token, /metrics answers only a request bearing
// it; health and readiness stay open for balancers.
func TestMetricsToken(t *testing.T) {
	d := newDevice(t)
	const token = "s3cret-t0ken"
	h := Handler(d, Config{NoProcessMetrics: true, Token: token})
	for _, auth := range []string{"", "Bearer", "Bearer wrong", "Basic " + token, "Bearer " + token + "x", "Bearer s3cret"} {
		rec := httptest.NewRecorder()
		r := httptest.NewRequest("GET", "/metrics", nil)
		if auth != "" {
			r.Header.Set("Authorization", auth)
		}
		h.ServeHTTP(rec, r)
		if rec.Code != http.StatusUnauthorized || rec.Header().Get("WWW-Authenticate") == "" {
			t.Errorf("/metrics with Authorization %q = %d, want 401 with WWW-Authenticate", auth, rec.Code)
		}
		if strings.Contains(rec.Body.String(), token) {
			t.Errorf("401 body shows the token")
		}
	}
	for _, auth := range []string{"Bearer " + token, "bearer " + token} {
		rec := httptest.NewRecorder()
		r := httptest.NewRequest("GET", "/metrics", nil)
		r.Header.Set("Authorization", auth)
		h.ServeHTTP(rec, r)
		if rec.Code != 200 || !strings.Contains(rec.Body.String(), "wghooks_up") {
			t.Errorf("/metrics with the token = %d", rec.Code)
		}
	}
	if code, _ := get(t, h, "/healthz"); code != 200 {
		t.Errorf("/healthz without a token = %d, want 200", code)
	}
}

func TestReadTokenFile(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "token")
	os.WriteFile(good, []byte("  abc123\n"), 0o600)
	if tok, err := ReadTokenFile(good); err != nil || tok != "abc123" {
		t.Errorf("ReadTokenFile = %q, %v; want abc123", tok, err)
	}
	empty := filepath.Join(dir, "empty")
	os.WriteFile(empty, []byte(" \n\t"), 0o600)
	for path, want := range map[string]string{empty: "empty", filepath.Join(dir, "missing"): "no such file"} {
		_, err := ReadTokenFile(path)
		if err == nil || !strings.Contains(err.Error(), "failed to read metrics token file") || !strings.Contains(err.Error(), want) {
			t.Errorf("ReadTokenFile(%q) = %v, want an error saying %q", path, err, want)
		}
	}
}
