package peerrow

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/wghooks/wghooks/hooks"
)

// TestRoundTrip: Encode then Decode gives the configuration back.
func TestRoundTrip(t *testing.T) {
	k := hooks.PublicKey{9}
	cfg := hooks.PeerConfig{PublicKey: k,
		AllowedIPs:          []netip.Prefix{netip.MustParsePrefix("198.18.0.2/32"), netip.MustParsePrefix("fd00::/64")},
		PresharedKey:        [32]byte{1, 2, 3},
		PersistentKeepalive: 25 * time.Second,
		Endpoint:            netip.MustParseAddrPort("[fd00::1]:51820"),
	}
	e, err := Encode(cfg)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Decode(k, e.AllowedIPs, e.PresharedKey, e.Keepalive, e.Endpoint)
	if err != nil || !got.Equal(cfg) {
		t.Fatalf("Decode(Encode(cfg)) = %+v, %v", got, err)
	}
	if e, _ := Encode(hooks.PeerConfig{PublicKey: k}); e.PresharedKey != nil || e.Endpoint != "" || e.AllowedIPs != "" {
		t.Fatalf("an empty peer encodes as %+v", e)
	}
}

// TestMalformed: a row that does not read is an error naming the peer
// and the bad column, never the preshared key.
func TestMalformed(t *testing.T) {
	k := hooks.PublicKey{9}
	psk := []byte(strings.Repeat("\x07", 31))
	for _, c := range []struct {
		ips, ep string
		psk     []byte
		ka      int64
		want    string
	}{
		{ips: "198.18.0.2/33", want: "198.18.0.2/33"},
		{ips: "nonsense", want: "nonsense"},
		{psk: psk, want: "31 bytes"},
		{ka: 70000, want: "70000"},
		{ka: -1, want: "-1"},
		{ep: "host:51820", want: "host:51820"},
		{ep: "198.18.0.1:0", want: "endpoint"},
	} {
		_, err := Decode(k, c.ips, c.psk, c.ka, c.ep)
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), k.String()) {
			t.Errorf("Decode(%q, psk %d bytes, %d, %q) = %v; want an error naming the peer and %q", c.ips, len(c.psk), c.ka, c.ep, err, c.want)
		}
		if err != nil && strings.Contains(err.Error(), "\x07") {
			t.Errorf("error carries the preshared key: %q", err)
		}
	}
	if _, err := Encode(hooks.PeerConfig{}); err == nil {
		t.Error("a peer without a key encoded")
	}
}
