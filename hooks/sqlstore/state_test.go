package sqlstore

import (
	"context"
	"errors"
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	"github.com/wghooks/wghooks/hooks"
)

func state(k byte, ep string, at time.Time) hooks.PeerState {
	return hooks.PeerState{Key: key(k), Endpoint: netip.MustParseAddrPort(ep), LastHandshake: at}
}

// The later handshake wins per key: within one batch, across batches
// written in any order, and across two stores (two gateways) on one file.
func TestPeerStateLaterHandshakeWins(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "fleet.db")
	a, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := Open(path) // a second gateway on the same file
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()

	t0 := time.Now().Add(-time.Minute).Round(0)
	// One batch naming key 1 twice, the later entry first.
	if err := a.SavePeerState(ctx, []hooks.PeerState{
		state(1, "198.18.0.2:1002", t0.Add(20*time.Second)),
		state(1, "198.18.0.2:1001", t0.Add(10*time.Second)),
		state(2, "198.18.0.3:2001", t0),
	}); err != nil {
		t.Fatal(err)
	}
	// The other gateway writes an older state of key 1 and a newer one of 2.
	if err := b.SavePeerState(ctx, []hooks.PeerState{
		state(1, "198.18.0.9:9", t0.Add(5*time.Second)),
		state(2, "[fd00::3]:2002", t0.Add(30*time.Second)),
	}); err != nil {
		t.Fatal(err)
	}
	got, err := a.LoadPeerState(ctx, t0.Add(-time.Hour), 10)
	if err != nil {
		t.Fatal(err)
	}
	want := []hooks.PeerState{
		state(2, "[fd00::3]:2002", t0.Add(30*time.Second)),
		state(1, "198.18.0.2:1002", t0.Add(20*time.Second)),
	}
	if len(got) != len(want) {
		t.Fatalf("LoadPeerState = %v, want %v", got, want)
	}
	for i := range want {
		if got[i].Key != want[i].Key || got[i].Endpoint != want[i].Endpoint || !got[i].LastHandshake.Equal(want[i].LastHandshake) {
			t.Errorf("state %d = %+v, want %+v", i, got[i], want[i])
		}
	}
}

// since and limit select the most recent states first.
func TestPeerStateSinceAndLimit(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t)
	t0 := time.Now().Round(0)
	var batch []hooks.PeerState
	for i := 1; i <= 5; i++ {
		batch = append(batch, state(byte(i), "198.18.0.2:1", t0.Add(-time.Duration(i)*time.Minute)))
	}
	if err := s.SavePeerState(ctx, batch); err != nil {
		t.Fatal(err)
	}
	got, err := s.LoadPeerState(ctx, t0.Add(-3*time.Minute), 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[0].Key != key(1) || got[2].Key != key(3) {
		t.Fatalf("since 3 minutes ago: %v, want keys 1, 2, 3 in that order", got)
	}
	got, err = s.LoadPeerState(ctx, t0.Add(-time.Hour), 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Key != key(1) || got[1].Key != key(2) {
		t.Fatalf("limit 2: %v, want keys 1, 2", got)
	}
	if got, err := s.LoadPeerState(ctx, t0.Add(-time.Hour), 0); err != nil || len(got) != 0 {
		t.Fatalf("limit 0: %v, %v; want nothing", got, err)
	}
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
