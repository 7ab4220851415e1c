package ops

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/wghooks/wghooks/device"
	"github.com/wghooks/wghooks/internal/testkit"
)

func newDevice(t *testing.T) *device.Device {
	t.Helper()
	return testkit.Device(t, "198.18.9.1", device.Config{Errorf: t.Logf})
}

func get(t *testing.T, h http.Handler, path string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
	b, _ := io.ReadAll(rec.Result().Body)
	return rec.Code, string(b)
}

func TestReadinessFollowsConfiguration(t *testing.T) {
	d := newDevice(t)
	h := Handler(d, Config{NoProcessMetrics: true})

	if code, _ := get(t, h, "/healthz"); code != 200 {
		t.Fatalf("/healthz of a fresh device = %d, want 200", code)
	}
	if code, body := get(t, h, "/readyz"); code != 503 || !strings.Contains(body, "not configured") {
		t.Fatalf("/readyz before configuration = %d %q, want 503 not configured", code, body)
	}
	key := strings.Repeat("a8", 32)
	if err := d.IpcSet("private_key=" + key + "\nlisten_port=0\n"); err != nil {
		t.Fatal(err)
	}
	if err := d.Up(); err != nil {
		t.Fatal(err)
	}
	if code, body := get(t, h, "/readyz"); code != 200 {
		t.Fatalf("/readyz configured and up = %d %q, want 200", code, body)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("HEAD", "/readyz", nil))
	if rec.Code != 200 {
		t.Fatalf("HEAD /readyz = %d, want 200 (some balancers probe with HEAD)", rec.Code)
	}
	// A failed transaction changes nothing; removing the key does.
	if err := d.IpcSet("private_key=zz\n"); err == nil {
		t.Fatal("bad private key accepted")
	}
	if code, _ := get(t, h, "/readyz"); code != 200 {
		t.Fatalf("/readyz after a rejected transaction = %d, want 200", code)
	}
	if err := d.IpcSet("private_key=" + strings.Repeat("00", 32) + "\n"); err != nil {
		t.Fatal(err)
	}
	if code, body := get(t, h, "/readyz"); code != 503 || !strings.Contains(body, "not configured") {
		t.Fatalf("/readyz with the key removed = %d %q, want 503 not configured", code, body)
	}

	d.Close()
	if code, body := get(t, h, "/healthz"); code != 503 || !strings.Contains(body, "closed") {
		t.Fatalf("/healthz of a closed device = %d %q, want 503", code, body)
	}
	if code, _ := get(t, h, "/readyz"); code != 503 {
		t.Fatalf("/readyz of a closed device = %d, want 503", code)
	}
}

func TestMetricsParse(t *testing.T) {
	d := newDevice(t)
	fams := scrapeFamilies(t, Handler(d, Config{Interface: "wg7"}))
	for _, name := range []string{
		"wghooks_handshakes_sent_total", "wghooks_handshakes_received_total", "wghooks_handshake_failures_total",
		"wghooks_peers_installed_total", "wghooks_peers_evicted_total", "wghooks_peers", "wghooks_peer_misses_total",
		"wghooks_provider_latency_seconds", "wghooks_initiation_decode_seconds", "wghooks_peer_install_seconds", "wghooks_provider_errors_total", "wghooks_lookups_refused_total", "wghooks_drains_total",
		"wghooks_endpoint_failovers_total", "wghooks_source_resets_total", "wghooks_flow_escapes_total",
		"wghooks_transfer_bytes_total", "wghooks_up", "wghooks_draining", "wghooks_ready", "go_goroutines",
	} {
		f, ok := fams[name]
		if !ok {
			t.Errorf("/metrics lacks %s", name)
			continue
		}
		if strings.HasPrefix(name, "wghooks_") {
			for _, m := range f.Metric {
				if iface := labelOf(m, "interface"); iface != "wg7" {
					t.Errorf("%s has interface label %q, want wg7", name, iface)
				}
			}
		}
	}
	if f := fams["wghooks_transfer_bytes_total"]; f != nil && len(f.Metric) != 2 {
		t.Errorf("transfer bytes has %d series, want rx and tx", len(f.Metric))
	}
}

func TestListenAddr(t *testing.T) {
	for in, want := range map[string]string{
		"9586":           "127.0.0.1:9586",
		":9586":          "127.0.0.1:9586",
		"127.0.0.1:9586": "127.0.0.1:9586",
		"0.0.0.0:80":     "0.0.0.0:80",
		"[::1]:9586":     "[::1]:9586",
		"localhost:1":    "localhost:1",
	} {
		got, err := ListenAddr(in)
		if err != nil || got != want {
			t.Errorf("ListenAddr(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "abc", ":99999", "host:", "1.2.3.4"} {
		if _, err := ListenAddr(bad); err == nil || !strings.Contains(err.Error(), "failed to parse listen address") {
			t.Errorf("ListenAddr(%q) error = %v, want a parse error", bad, err)
		}
	}
}

func TestServerStartClose(t *testing.T) {
	d := newDevice(t)
	s, err := Start(d, "127.0.0.1:0", Config{})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(s.URL() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("/healthz over TCP = %d", resp.StatusCode)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := http.Get(s.URL() + "/healthz"); err == nil {
		t.Fatal("endpoint still answers after Close")
	}
}

// TestNonUTF8InterfaceName: a Prometheus label is UTF-8. Start refuses
// such a name with an error and Handler replaces the invalid bytes; neither
// panics.
func TestNonUTF8InterfaceName(t *testing.T) {
	d := newDevice(t)
	if s, err := Start(d, "127.0.0.1:0", Config{Interface: "wg\xff"}); err == nil {
		s.Close()
		t.Fatal("Start accepted a non-UTF-8 interface name")
	} else if !strings.Contains(err.Error(), "failed to label metrics") {
		t.Fatalf("Start: %v", err)
	}
	code, body := get(t, Handler(d, Config{Interface: "wg\xff", NoProcessMetrics: true}), "/metrics")
	if code != 200 || !strings.Contains(body, "interface=\"wg\uFFFD\"") {
		t.Fatalf("/metrics = %d:\n%.300s", code, body)
	}
}
