package sqlstore

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wghooks/wghooks/hooks"
)

func openTemp(t *testing.T) *Store {
	t.Helper()
	s, err := Open(filepath.Join(t.TempDir(), "peers.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// openTwo opens two handles on one new store file (the daemon and the
// CLI, or two gateways), closed at Cleanup.
func openTwo(t *testing.T) (*Store, *Store) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "peers.db")
	var out [2]*Store
	for i := range out {
		s, err := Open(path)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		out[i] = s
	}
	return out[0], out[1]
}

func key(b byte) hooks.PublicKey {
	var k hooks.PublicKey
	for i := range k {
		k[i] = b
	}
	return k
}

func TestStoreRoundTrip(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t)
	want := Peer{
		PeerConfig: hooks.PeerConfig{
			PublicKey:           key(1),
			AllowedIPs:          []netip.Prefix{netip.MustParsePrefix("198.18.0.2/32"), netip.MustParsePrefix("fd00::2/128")},
			PresharedKey:        [32]byte{9},
			PersistentKeepalive: 25 * time.Second,
			Endpoint:            netip.MustParseAddrPort("198.18.1.1:51820"),
		},
		Comment: "laptop",
	}
	if err := s.Put(ctx, want); err != nil {
		t.Fatal(err)
	}
	got, err := s.LookupPeer(ctx, key(1))
	if err != nil {
		t.Fatal(err)
	}
	if !got.Equal(want.PeerConfig) || got.PublicKey != key(1) {
		t.Fatalf("LookupPeer = %+v, want %+v", got, want.PeerConfig)
	}
	if _, err := s.LookupPeer(ctx, key(2)); !errors.Is(err, hooks.ErrUnknownPeer) {
		t.Fatalf("LookupPeer of a missing key: %v, want ErrUnknownPeer", err)
	}
	p, err := s.Get(ctx, key(1))
	if err != nil || p.Comment != "laptop" || p.Added.IsZero() {
		t.Fatalf("Get = %+v, %v", p, err)
	}
	if n, _ := s.Count(ctx); n != 1 {
		t.Fatalf("Count = %d, want 1", n)
	}
	ok, err := s.Delete(ctx, key(1))
	if err != nil || !ok {
		t.Fatalf("Delete = %v, %v", ok, err)
	}
	if _, err := s.LookupPeer(ctx, key(1)); !errors.Is(err, hooks.ErrUnknownPeer) {
		t.Fatalf("LookupPeer after Delete: %v, want ErrUnknownPeer", err)
	}
	if ok, _ := s.Delete(ctx, key(1)); ok {
		t.Fatal("second Delete reported a removal")
	}
}

func TestStoreRefusesInvalid(t *testing.T) {
	s := openTemp(t)
	err := s.Put(context.Background(), Peer{PeerConfig: hooks.PeerConfig{PublicKey: key(1), PersistentKeepalive: -time.Second}})
	if err == nil || !strings.Contains(err.Error(), "failed to store peer") {
		t.Fatalf("Put of a negative keepalive: %v", err)
	}
	if err := s.Put(context.Background(), Peer{}); err == nil {
		t.Fatal("Put without a key succeeded")
	}
}

func TestStoreSharedBetweenHandles(t *testing.T) {
	// The daemon reads while the CLI writes, each with its own handle.
	a, b := openTwo(t)
	ctx := context.Background()
	if err := b.Put(ctx, Peer{PeerConfig: hooks.PeerConfig{PublicKey: key(3)}}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.LookupPeer(ctx, key(3)); err != nil {
		t.Fatalf("other handle does not see the new peer: %v", err)
	}
}

func TestParseConfig(t *testing.T) {
	conf := `[Interface]
ListenPort = 51820
PrivateKey = cGluZ3BvbmdwaW5ncG9uZ3Bpbmdwb25ncGluZ3Bvbmc=

[Peer]
PublicKey = AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=
AllowedIPs = 198.18.0.2/32, fd00::2/128
Endpoint = 198.18.1.1:51820
PersistentKeepalive = 25 # comment

[Peer]
PublicKey = AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI=
PresharedKey = CQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=
AllowedIPs = 198.18.0.3
`
	peers, err := ParseConfig(strings.NewReader(conf))
	if err != nil {
		t.Fatal(err)
	}
	if len(peers) != 2 {
		t.Fatalf("got %d peers, want 2", len(peers))
	}
	if peers[0].PublicKey != key(1) || len(peers[0].AllowedIPs) != 2 || peers[0].PersistentKeepalive != 25*time.Second ||
		peers[0].Endpoint != netip.MustParseAddrPort("198.18.1.1:51820") {
		t.Fatalf("peer 0 = %+v", peers[0])
	}
	if peers[1].PublicKey != key(2) || peers[1].PresharedKey != [32]byte{9} ||
		peers[1].AllowedIPs[0] != netip.MustParsePrefix("198.18.0.3/32") {
		t.Fatalf("peer 1 = %+v", peers[1])
	}

	for _, bad := range []string{
		"[Peer]\nAllowedIPs = 198.18.0.2/32\n",
		"[Peer]\nPublicKey = nope\n",
		"[Peer]\nPublicKey = AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=\nEndpoint = example.com:51820\n",
		"[Peer]\nPublicKey = AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=\nPersistentKeepalive = 70000\n",
		"[Peer]\nPublicKey\n",
	} {
		if _, err := ParseConfig(strings.NewReader(bad)); err == nil || !strings.Contains(err.Error(), "failed to parse config") {
			t.Errorf("ParseConfig(%q) = %v, want a parse error", bad, err)
		}
	}
}

func BenchmarkLookup(b *testing.B) {
	s, err := Open(filepath.Join(b.TempDir(), "peers.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	peers := make([]Peer, 10000)
	for i := range peers {
		peers[i].PublicKey = hooks.PublicKey{byte(i), byte(i >> 8), 1}
		peers[i].AllowedIPs = []netip.Prefix{netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 18, byte(i >> 8), byte(i)}), 32)}
	}
	if err := s.Put(ctx, peers...); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := s.LookupPeer(ctx, peers[i%len(peers)].PublicKey); err != nil {
			b.Fatal(err)
		}
	}
}

// TestParseConfigRedactsPresharedKey: a bad PresharedKey line is named by
// its key and line number; its value is never in the error.
func TestParseConfigRedactsPresharedKey(t *testing.T) {
	const secret = "c2VjcmV0LXByZXNoYXJlZC1rZXktdmFsdWUtdG9vLWxvbmctZm9y"
	conf := "[Peer]\nPublicKey = AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=\nPresharedKey = " + secret + "\n"
	_, err := ParseConfig(strings.NewReader(conf))
	if err == nil {
		t.Fatal("bad preshared key accepted")
	}
	msg := err.Error()
	if strings.Contains(msg, secret) || strings.Contains(msg, secret[:16]) {
		t.Errorf("error repeats the preshared key: %s", msg)
	}
	if !strings.Contains(msg, "line 3") || !strings.Contains(msg, "PresharedKey") {
		t.Errorf("error %q does not name line 3 and PresharedKey", msg)
	}
}

// TestParseConfigLongAllowedIPs: an AllowedIPs line of 5,000 prefixes
// (over 64 KiB, which wg setconf takes) imports whole.
func TestParseConfigLongAllowedIPs(t *testing.T) {
	var b strings.Builder
	b.WriteString("[Peer]\nPublicKey = " + base64.StdEncoding.EncodeToString(append(make([]byte, 31), 1)) + "\nAllowedIPs = ")
	for i := 0; i < 5000; i++ {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "198.18.%d.%d/32", i/256, i%256)
	}
	b.WriteString("\n")
	if b.Len() <= 64<<10 {
		t.Fatalf("test line is %d bytes, want over 64 KiB", b.Len())
	}
	peers, err := ParseConfig(strings.NewReader(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	if len(peers) != 1 || len(peers[0].AllowedIPs) != 5000 {
		t.Fatalf("got %d peers, %d allowed IPs; want 1 and 5000", len(peers), len(peers[0].AllowedIPs))
	}
}
