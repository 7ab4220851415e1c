package main

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"wghooks/device"
)

func TestEndpointOptions(t *testing.T) {
	dir := t.TempDir()
	old := wireguardConfigDir
	wireguardConfigDir = dir
	defer func() { wireguardConfigDir = old }()
	conf := "[Interface]\nPrivateKey = 6KlCNMKAkKcfT+iQxfl7ABTz4yiso5iwGjJgdGVu9VQ=\n[Peer]\nPublicKey = fFZZy7EIFsMwoOLXJgeJOV3S0XAB9VaW7Ig7Dq12zCI=\nEndpoint = vpn.example.test:51820\nAllowedIPs = 198.18.0.0/24\n"
	os.WriteFile(filepath.Join(dir, "wg7.conf"), []byte(conf), 0o600)

	env := map[string]string{envDNS: "198.18.0.53, 198.18.0.54:5353", envEndpointMinTTL: "2s", envRouteWatch: "off"}
	cfg := device.Config{Name: "wg7"}
	if err := parseEndpointOptions(&cfg, func(k string) string { return env[k] }); err != nil {
		t.Fatal(err)
	}
	if len(cfg.Endpoints.Hosts) != 1 || cfg.Endpoints.MinTTL != 2*time.Second || !cfg.Endpoints.NoRouteWatch || cfg.Endpoints.Resolver == nil {
		t.Fatalf("parsed %+v", cfg.Endpoints)
	}
	for _, h := range cfg.Endpoints.Hosts {
		if h != "vpn.example.test:51820" {
			t.Errorf("host %q", h)
		}
	}

	// No file for this interface: fine. A named file that is missing, or
	// bad values: errors.
	if err := parseEndpointOptions(&device.Config{Name: "wg8"}, func(string) string { return "" }); err != nil {
		t.Errorf("missing default file: %v", err)
	}
	for k, v := range map[string]string{envEndpointsConfig: filepath.Join(dir, "none.conf"), envDNS: "not-an-ip", envEndpointMaxTTL: "soon", envRouteWatch: "maybe"} {
		if err := parseEndpointOptions(&device.Config{Name: "wg8"}, func(key string) string {
			if key == k {
				return v
			}
			return ""
		}); err == nil {
			t.Errorf("%s=%q accepted", k, v)
		}
	}
}
