package sqlstore

import (
	"context"
	"errors"
	"net/netip"
	"testing"

	"github.com/wghooks/wghooks/hooks"
)

// TestLookupPeersMatchesLookupPeer: a batch answers every key as
// LookupPeer does, in the order asked, across more keys than one query
// names: the stored ones with their configuration, the missing ones
// unknown, a malformed row as its own key's error only.
func TestLookupPeersMatchesLookupPeer(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t)
	var peers []Peer
	for b := 1; b <= 100; b++ {
		peers = append(peers, Peer{PeerConfig: hooks.PeerConfig{
			PublicKey:  key(byte(b)),
			AllowedIPs: []netip.Prefix{netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 18, 3, byte(b)}), 32)},
		}})
	}
	if err := s.Put(ctx, peers...); err != nil {
		t.Fatal(err)
	}
	bad := key(200)
	if _, err := s.db.Exec(`INSERT INTO peers (public_key, allowed_ips) VALUES (?, 'not an address')`, bad[:]); err != nil {
		t.Fatal(err)
	}
	var keys []hooks.PublicKey
	for b := 150; b >= 1; b-- { // 50 unknown, in reverse order
		keys = append(keys, key(byte(b)))
	}
	keys = append(keys, bad)
	got, err := s.LookupPeers(ctx, keys)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(keys) {
		t.Fatalf("%d answers for %d keys", len(got), len(keys))
	}
	for i, k := range keys {
		want, wantErr := s.LookupPeer(ctx, k)
		switch {
		case wantErr != nil && got[i].Err == nil,
			wantErr == nil && got[i].Err != nil,
			errors.Is(wantErr, hooks.ErrUnknownPeer) != errors.Is(got[i].Err, hooks.ErrUnknownPeer):
			t.Fatalf("key %d: batch error %v, LookupPeer error %v", i, got[i].Err, wantErr)
		case wantErr == nil && (!got[i].Config.Equal(want) || got[i].Config.PublicKey != k):
			t.Fatalf("key %d: batch %+v, LookupPeer %+v", i, got[i].Config, want)
		}
	}
	if got[len(keys)-1].Err == nil || errors.Is(got[len(keys)-1].Err, hooks.ErrUnknownPeer) {
		t.Fatalf("the malformed row answered %v, want its own error", got[len(keys)-1].Err)
	}
	s.Close()
	if _, err := s.LookupPeers(ctx, keys[:2]); err == nil {
		t.Fatal("LookupPeers on a closed store succeeded")
	}
}
