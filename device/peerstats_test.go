package device

import (
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	wgdevice "golang.zx2c4.com/wireguard/device"
)

// TestPeerStatsParserSplitWrites: a get reply read in one write or cut
// anywhere gives the same counters, for the peers of the view only, and
// keeps nothing of the keys that are not public.
func TestPeerStatsParserSplitWrites(t *testing.T) {
	held := wgdevice.NoisePublicKey{1}
	const reply = "private_key=" + "aa00000000000000000000000000000000000000000000000000000000000000" + "\n" +
		"listen_port=51820\n" +
		"public_key=0100000000000000000000000000000000000000000000000000000000000000\n" +
		"preshared_key=bb00000000000000000000000000000000000000000000000000000000000000\n" +
		"protocol_version=1\nendpoint=127.0.0.1:9\n" +
		"last_handshake_time_sec=1700000000\nlast_handshake_time_nsec=5\n" +
		"tx_bytes=18446744073709551615\nrx_bytes=42\npersistent_keepalive_interval=0\n" +
		"allowed_ip=198.18.0.2/32\nallowed_ip=fd00::2/128\n" +
		"public_key=0200000000000000000000000000000000000000000000000000000000000000\n" +
		"last_handshake_time_sec=0\nlast_handshake_time_nsec=0\ntx_bytes=1\nrx_bytes=1\n" +
		"allowed_ip=198.18.0.3/32\n"
	want := []PeerStats{{
		PublicKey:     held,
		AllowedIPs:    []netip.Prefix{netip.MustParsePrefix("198.18.0.2/32"), netip.MustParsePrefix("fd00::2/128")},
		LastHandshake: time.Unix(1700000000, 5),
		RxBytes:       42,
		TxBytes:       1<<64 - 1,
	}}
	d := &Device{}
	d.peers.init()
	d.peers.keys[held] = struct{}{} // the second peer is not in the view

	parse := func(chunks []string) []PeerStats {
		r := d.peerStatsReader()
		for _, c := range chunks {
			r.Write([]byte(c))
		}
		return peerStatsOf(r.View())
	}
	if got := parse([]string{reply}); !reflect.DeepEqual(got, want) {
		t.Fatalf("one write: %+v, want %+v", got, want)
	}
	for cut := 1; cut < len(reply); cut++ {
		if got := parse([]string{reply[:cut], reply[cut:]}); !reflect.DeepEqual(got, want) {
			t.Fatalf("cut at %d (%q): %+v", cut, reply[max(0, cut-10):cut], got)
		}
	}
	if got := parse(strings.SplitAfter(reply, "")); !reflect.DeepEqual(got, want) {
		t.Fatalf("byte by byte: %+v", got)
	}
}
