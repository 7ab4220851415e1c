package main

import (
	"strings"
	"testing"

	"github.com/wghooks/wghooks/hooks/httpprovider"
)

// TestPeerURLPlaintext: an http:// control plane that is not loopback is
// refused unless WGHOOKS_PEER_ALLOW_PLAINTEXT is on.
func TestPeerURLPlaintext(t *testing.T) {
	env := map[string]string{"WGHOOKS_PEER_URL": "http://198.18.0.1/peers"}
	if _, _, err := testSettings(t, "wg7", env); err == nil || !strings.Contains(err.Error(), "plaintext") {
		t.Fatalf("plaintext URL: %v, want refused", err)
	}
	env["WGHOOKS_PEER_ALLOW_PLAINTEXT"] = "on"
	d, _, err := testSettings(t, "wg7", env)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := d.cfg.JIT.Provider.(*httpprovider.Provider); !ok {
		t.Fatalf("provider %T", d.cfg.JIT.Provider)
	}
}
