package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wghooks/wghooks/cmd/wireguard-go/internal/settings"
)

func TestEndpointOptions(t *testing.T) {
	dir := t.TempDir()
	conf := "[Interface]\nPrivateKey = 6KlCNMKAkKcfT+iQxfl7ABTz4yiso5iwGjJgdGVu9VQ=\n[Peer]\nPublicKey = fFZZy7EIFsMwoOLXJgeJOV3S0XAB9VaW7Ig7Dq12zCI=\nEndpoint = vpn.example.test:51820\nAllowedIPs = 198.18.0.0/24\n"
	os.WriteFile(filepath.Join(dir, "wg7.conf"), []byte(conf), 0o600)

	env := map[string]string{"WGHOOKS_DNS": "198.18.0.53, 198.18.0.54:5353", "WGHOOKS_ENDPOINT_MIN_TTL": "2s", "WGHOOKS_ROUTE_WATCH": "off"}
	d, vs, err := testSettings(t, "wg7", env)
	if err != nil {
		t.Fatal(err)
	}
	if v := vs.Get("WGHOOKS_ENDPOINTS_CONFIG"); v.Text != "/etc/wireguard/wg7.conf" || v.Source != settings.FromDefault {
		t.Fatalf("default wg-quick file %+v", v)
	}
	// The default file, when it exists, is read.
	if err := applyEndpointsConfig(d, settings.Value{Text: filepath.Join(dir, "wg7.conf"), Source: settings.FromDefault}); err != nil {
		t.Fatal(err)
	}
	if len(d.cfg.Endpoints.Hosts) != 1 || d.cfg.Endpoints.MinTTL != 2*time.Second || !d.cfg.Endpoints.NoRouteWatch || d.cfg.Endpoints.Resolver == nil {
		t.Fatalf("parsed %+v", d.cfg.Endpoints)
	}
	for _, h := range d.cfg.Endpoints.Hosts {
		if h != "vpn.example.test:51820" {
			t.Errorf("host %q", h)
		}
	}

	// No file for this interface: fine. A named file that is missing, or
	// bad values: errors.
	if err := applyEndpointsConfig(d, settings.Value{Text: filepath.Join(dir, "wg8.conf"), Source: settings.FromDefault}); err != nil {
		t.Errorf("missing default file: %v", err)
	}
	for k, v := range map[string]string{"WGHOOKS_ENDPOINTS_CONFIG": filepath.Join(dir, "none.conf"), "WGHOOKS_DNS": "not-an-ip", "WGHOOKS_ENDPOINT_MAX_TTL": "soon", "WGHOOKS_ROUTE_WATCH": "maybe"} {
		if _, _, err := testSettings(t, "wg8", map[string]string{k: v}); err == nil {
			t.Errorf("%s=%q accepted", k, v)
		}
	}
}

// TestEndpointsConfigUnusable: a file wghooks reads only for hostnames
// never stops the daemon; it keeps what it can read and names the rest
// by line and key, without quoting a line (it may be a PrivateKey).
func TestEndpointsConfigUnusable(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "wg7.conf")
	conf := "[Interface]\nPrivateKey = SECRETxxPRIVATE\nSECRETxxGARBAGE\n" +
		"[Peer]\nPublicKey = fFZZy7EIFsMwoOLXJgeJOV3S0XAB9VaW7Ig7Dq12zCI=\nPresharedKey = SECRETxxPSK\nEndpoint = vpn.example.test:51820\n" +
		"AllowedIPs = " + strings.Repeat("198.18.0.1/32, ", 5000) + "fd00::1/128\n"
	os.WriteFile(path, []byte(conf), 0o600)

	hosts, problems, err := readHostEndpoints(path)
	if err != nil || len(hosts) != 1 || len(problems) != 3 {
		t.Fatalf("hosts %v, problems %v, err %v", hosts, problems, err)
	}
	line := skippedLine(path, problems)
	if strings.Contains(line, "SECRET") || !strings.Contains(line, "line 2 (PrivateKey)") || !strings.Contains(line, "line 3: want Key = Value") {
		t.Errorf("log line %q", line)
	}

	d, _, err := testSettings(t, "wg7", map[string]string{"WGHOOKS_ENDPOINTS_CONFIG": path})
	if err != nil {
		t.Fatalf("the daemon refuses an unusable file: %v", err)
	}
	if len(d.cfg.Endpoints.Hosts) != 1 {
		t.Errorf("hosts %v", d.cfg.Endpoints.Hosts)
	}
}
