//go:build linux

package tests

import (
	"bufio"
	"encoding/base64"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/wghooks/wghooks/internal/testkit"
)

// TestNetnsHADaemonOps runs the daemon as an operator would behind a load
// balancer: WGHOOKS_HTTP turns the operations endpoint on (a bare port
// listens on loopback), `wg` configures it, and a drain over the UAPI
// socket turns /readyz to 503 at once.
func TestNetnsHADaemonOps(t *testing.T) {
	netnsRequire(t)
	netnsRequireTool(t, "wg")
	ns := newNetns(t)
	iface := netnsName("ha")
	d := ns.startDaemon(t, wghooksBinary(t), iface, "WGHOOKS_HTTP=9586")

	client := ns.httpClient(netip.MustParseAddrPort("127.0.0.1:9586"))
	get := func(path string) (int, string) {
		t.Helper()
		resp, err := client.Get("http://127.0.0.1:9586" + path)
		if err != nil {
			t.Fatalf("GET %s: %v\n%s", path, err, d.out.String())
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}

	if code, _ := get("/healthz"); code != 200 {
		t.Fatalf("/healthz = %d, want 200", code)
	}
	if code, body := get("/readyz"); code != 503 || !strings.Contains(body, "not configured") {
		t.Fatalf("/readyz before configuration = %d %q, want 503 not configured", code, body)
	}

	key := testkit.NewKeypair()
	keyFile := filepath.Join(t.TempDir(), "key")
	if err := os.WriteFile(keyFile, []byte(base64.StdEncoding.EncodeToString(key.Priv[:])+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	d.wg(t, "set", iface, "private-key", keyFile, "listen-port", "51820")
	ns.run(t, "ip", "link", "set", iface, "up")
	testkit.Eventually(t, 5*time.Second, "/readyz to answer 200 once configured and up", func() bool {
		code, _ := get("/readyz")
		return code == 200
	})

	_, body := get("/metrics")
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("failed to parse /metrics: %v", err)
	}
	up := fams["wghooks_up"]
	if up == nil || len(up.Metric) != 1 || up.Metric[0].GetGauge().GetValue() != 1 {
		t.Fatalf("wghooks_up = %v", up)
	}
	if l := up.Metric[0].GetLabel(); len(l) != 1 || l[0].GetName() != "interface" || l[0].GetValue() != iface {
		t.Fatalf("wghooks_up labels = %v, want interface=%q", l, iface)
	}

	// Drain with raw UAPI text, as `nc -U` would send it.
	c, err := net.Dial("unix", netnsSocket(iface))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, "set=1\ndrain=true\n\n"); err != nil {
		t.Fatal(err)
	}
	reply, _ := bufio.NewReader(c).ReadString('\n')
	if reply != "errno=0\n" {
		t.Fatalf("drain reply = %q", reply)
	}
	if code, body := get("/readyz"); code != 503 || !strings.Contains(body, "draining") {
		t.Fatalf("/readyz right after drain = %d %q, want 503 draining", code, body)
	}
	if code, _ := get("/healthz"); code != 200 {
		t.Fatalf("/healthz while draining = %d, want 200", code)
	}
}
