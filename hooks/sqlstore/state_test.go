package sqlstore

import (
	"context"
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/wghooks/wghooks/hooks"
	"github.com/wghooks/wghooks/internal/testkit"
)

func state(k byte, ep string, at time.Time) hooks.PeerState {
	return hooks.PeerState{Key: key(k), Endpoint: netip.MustParseAddrPort(ep), LastHandshake: at}
}

// The hooks.StateStore contract, with two stores (two gateways) on one
// file.
func TestPeerStateContract(t *testing.T) {
	a, b := openTwo(t)
	testkit.CheckStateStore(t, a, b)
}

// A bad entry fails its batch before anything is written; a malformed
// row is skipped, named, and the others still load; a deleted peer loses
// its state.
func TestPeerStateBadInput(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t)
	now := time.Now()
	good := state(1, "198.18.0.2:1", now)
	for _, bad := range []hooks.PeerState{
		{Key: key(2), Endpoint: netip.MustParseAddrPort("198.18.0.2:0"), LastHandshake: now},
		{Key: key(2), LastHandshake: now},
		{Endpoint: netip.MustParseAddrPort("198.18.0.2:1"), LastHandshake: now},
		{Key: key(2), Endpoint: netip.MustParseAddrPort("198.18.0.2:1")},
	} {
		if err := s.SavePeerState(ctx, []hooks.PeerState{good, bad}); err == nil {
			t.Errorf("SavePeerState(%+v) succeeded, want an error", bad)
		}
	}
	if got, _ := s.LoadPeerState(ctx, time.Time{}, 10); len(got) != 0 {
		t.Fatalf("a failed batch wrote %v", got)
	}
	if err := s.SavePeerState(ctx, []hooks.PeerState{good, state(3, "198.18.0.4:1", now)}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.db.Exec(`UPDATE peer_state SET endpoint = 'not an endpoint' WHERE public_key = ?`, keyBytes(3)); err != nil {
		t.Fatal(err)
	}
	got, err := s.LoadPeerState(ctx, time.Time{}, 10)
	if !errors.Is(err, ErrMalformedState) || len(got) != 1 || got[0].Key != key(1) {
		t.Fatalf("with a malformed row: %v, %v; want key 1 and ErrMalformedState", got, err)
	}
	if err := s.Put(ctx, Peer{PeerConfig: hooks.PeerConfig{PublicKey: key(1)}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Delete(ctx, key(1)); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.LoadPeerState(ctx, time.Time{}, 10); len(got) != 0 {
		t.Fatalf("after Delete: %v, want no state of the deleted peer", got)
	}
}

func keyBytes(b byte) []byte { k := key(b); return k[:] }
