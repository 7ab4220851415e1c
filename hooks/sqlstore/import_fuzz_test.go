package sqlstore

import (
	"strings"
	"testing"

	"github.com/wghooks/wghooks/hooks"
	"github.com/wghooks/wghooks/internal/peerrow"
)

// FuzzParseConfig feeds `wghooks peers import` input (a configuration
// file an operator got from somewhere) to ParseConfig. It must never
// panic; every peer it returns has a key, and its allowed IPs survive the
// store's own text form unchanged.
func FuzzParseConfig(f *testing.F) {
	f.Add("[Interface]\nPrivateKey = x\n\n[Peer]\nPublicKey = fFZZy7EIFsMwoOLXJgeJOV3S0XAB9VaW7Ig7Dq12zCI=\nAllowedIPs = 198.18.0.2/32, fd00::2\nPersistentKeepalive = 25\nEndpoint = 198.18.1.1:51820\nPresharedKey = BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=\n")
	f.Add("[Peer]\nPublicKey = 7c5659cbb10816c330a0e2d7260789395dd2d17001f55696ec883b0ead76cc22 # hex\nAllowedIPs=\n[peer]\n")
	f.Add("[Peer]\nEndpoint = vpn.example.com:51820\n")
	f.Add("[Peer]\nPersistentKeepalive = off\nAllowedIPs = 300.0.0.1/32\n")
	f.Add("[Peer]\nPublicKey\n")
	f.Fuzz(func(t *testing.T, s string) {
		peers, err := ParseConfig(strings.NewReader(s))
		if err != nil {
			if !strings.HasPrefix(err.Error(), "failed to ") {
				t.Fatalf("error %q does not say what failed", err)
			}
			return
		}
		for _, p := range peers {
			if p.PublicKey == (hooks.PublicKey{}) {
				t.Fatalf("peer without a key from %q", s)
			}
			again, err := ParseAllowedIPs(peerrow.FormatAllowedIPs(p.AllowedIPs))
			if err != nil || len(again) != len(p.AllowedIPs) {
				t.Fatalf("allowed IPs %v do not survive the store: %v, %v", p.AllowedIPs, again, err)
			}
			for i := range again {
				if again[i] != p.AllowedIPs[i] {
					t.Fatalf("allowed IP %v came back as %v", p.AllowedIPs[i], again[i])
				}
			}
		}
	})
}

// FuzzDecodeRow feeds a stored row (another process may have written the
// file) to decodeRow: never a panic, and an error names the peer.
func FuzzDecodeRow(f *testing.F) {
	f.Add("198.18.0.2/32, fd00::2", []byte(nil), int64(25), "198.18.1.1:51820")
	f.Add("", make([]byte, 32), int64(0), "")
	f.Add("x", []byte{1}, int64(-1), "[::1]:0")
	f.Fuzz(func(t *testing.T, ips string, psk []byte, ka int64, ep string) {
		k := key(7)
		cfg, err := decodeRow(k, ips, psk, ka, ep)
		if err != nil {
			if !strings.Contains(err.Error(), k.String()) {
				t.Fatalf("error %q does not name the peer", err)
			}
			return
		}
		if cfg.PublicKey != k {
			t.Fatalf("row decoded for %v, want %v", cfg.PublicKey, k)
		}
	})
}
