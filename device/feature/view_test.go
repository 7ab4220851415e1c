package feature

import (
	"net/netip"
	"strings"
	"testing"
)

func TestViewByEndpoint(t *testing.T) {
	hex64 := func(c byte) string { return strings.Repeat(string(c), 64) }
	get := "private_key=" + hex64('a') + "\nlisten_port=1234\n" +
		"public_key=" + hex64('b') + "\nendpoint=127.0.0.1:51820\nallowed_ip=198.18.0.1/32\n" +
		"public_key=" + hex64('c') + "\nallowed_ip=198.18.0.2/32\n" +
		"public_key=" + hex64('d') + "\nendpoint=[fd00::1]:51820\n" +
		"public_key=" + hex64('e') + "\nendpoint=127.0.0.1:51820\n"
	v := ParseView(get)
	m := v.ByEndpoint()
	v4 := netip.MustParseAddrPort("127.0.0.1:51820")
	v6 := netip.MustParseAddrPort("[fd00::1]:51820")
	if len(m) != 2 || len(m[v4]) != 2 || len(m[v6]) != 1 {
		t.Fatalf("ByEndpoint = %v", m)
	}
	if m[v4][0][0] != 0xbb || m[v4][1][0] != 0xee || m[v6][0][0] != 0xdd {
		t.Fatalf("ByEndpoint keys = %v", m)
	}
	if _, ok := v.PublicKey(); !ok || len(v.ByPeer()) != 3 {
		t.Fatalf("PublicKey or ByPeer wrong: %v", v.ByPeer())
	}
}
