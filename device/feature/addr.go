package feature

import (
	"encoding/base64"
	"fmt"
	"net/netip"

	wgdevice "golang.zx2c4.com/wireguard/device"
)

// Key is a peer's public key.
type Key = wgdevice.NoisePublicKey

// ShortKey names a peer in log lines exactly as upstream does,
// "peer(AbCd…WxYz)", so one grep finds both.
func ShortKey(pk Key) string {
	b64 := base64.StdEncoding.EncodeToString(pk[:])
	return "peer(" + b64[0:4] + "…" + b64[39:43] + ")"
}

// EncodeKey is a key in base64, as wg prints it and the state file keeps it.
func EncodeKey(k Key) string { return base64.StdEncoding.EncodeToString(k[:]) }

// DecodeKey reads a base64 key.
func DecodeKey(s string) (Key, error) {
	var k Key
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return k, err
	}
	if len(b) != len(k) {
		return k, fmt.Errorf("%d bytes, want %d", len(b), len(k))
	}
	copy(k[:], b)
	return k, nil
}

// NormalizeEndpoint gives an address:port the form upstream prints (IPv4
// unmapped), so configured and learned endpoints compare equal.
func NormalizeEndpoint(s string) string {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()).String()
	}
	return s
}
