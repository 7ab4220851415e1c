package sqlstore

import (
	"context"
	"errors"
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	"github.com/wghooks/wghooks/hooks"
	"github.com/wghooks/wghooks/internal/testkit"
)

// gateway is the key of the gateway writing the states of these tests.
var gateway = key(0xf1)

func state(k byte, ep string, at time.Time) hooks.PeerState {
	return hooks.PeerState{Key: key(k), Endpoint: netip.MustParseAddrPort(ep), LastHandshake: at, Gateway: gateway}
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
		{Key: key(2), Endpoint: netip.MustParseAddrPort("198.18.0.2:0"), LastHandshake: now, Gateway: gateway},
		{Key: key(2), LastHandshake: now, Gateway: gateway},
		{Endpoint: netip.MustParseAddrPort("198.18.0.2:1"), LastHandshake: now, Gateway: gateway},
		{Key: key(2), Endpoint: netip.MustParseAddrPort("198.18.0.2:1"), Gateway: gateway},
		{Key: key(2), Endpoint: netip.MustParseAddrPort("198.18.0.2:1"), LastHandshake: now},
	} {
		if err := s.SavePeerState(ctx, []hooks.PeerState{good, bad}); err == nil {
			t.Errorf("SavePeerState(%+v) succeeded, want an error", bad)
		}
	}
	if got, _ := s.LoadPeerState(ctx, gateway, time.Time{}, 10); len(got) != 0 {
		t.Fatalf("a failed batch wrote %v", got)
	}
	if err := s.SavePeerState(ctx, []hooks.PeerState{good, state(3, "198.18.0.4:1", now)}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.db.Exec(`UPDATE peer_state SET endpoint = 'not an endpoint' WHERE public_key = ?`, keyBytes(3)); err != nil {
		t.Fatal(err)
	}
	got, err := s.LoadPeerState(ctx, gateway, time.Time{}, 10)
	if !errors.Is(err, ErrMalformedState) || len(got) != 1 || got[0].Key != key(1) {
		t.Fatalf("with a malformed row: %v, %v; want key 1 and ErrMalformedState", got, err)
	}
	// An endpoint that parses but a save would refuse (port 0), too.
	if _, err := s.db.Exec(`UPDATE peer_state SET endpoint = '198.18.0.4:0' WHERE public_key = ?`, keyBytes(3)); err != nil {
		t.Fatal(err)
	}
	got, err = s.LoadPeerState(ctx, gateway, time.Time{}, 10)
	if !errors.Is(err, ErrMalformedState) || len(got) != 1 || got[0].Key != key(1) {
		t.Fatalf("with a port-0 row: %v, %v; want key 1 and ErrMalformedState", got, err)
	}
	if err := s.Put(ctx, Peer{PeerConfig: hooks.PeerConfig{PublicKey: key(1)}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Delete(ctx, key(1)); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.LoadPeerState(ctx, gateway, time.Time{}, 10); len(got) != 0 {
		t.Fatalf("after Delete: %v, want no state of the deleted peer", got)
	}
}

func keyBytes(b byte) []byte { k := key(b); return k[:] }

// A store written before peer_state recorded the writer's key is moved to
// the new table once, at Open: its rows are kept with no gateway key and
// never returned for a takeover; the gateway's own state of the same peer
// is written beside them.
func TestPeerStateMigratedFromVersion1(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "v1.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	// Make it version 1: the old table, keyed by the peer alone.
	for _, q := range []string{
		`DROP TABLE peer_state`,
		`CREATE TABLE peer_state (
			public_key     BLOB PRIMARY KEY CHECK (length(public_key) = 32),
			endpoint       TEXT NOT NULL,
			last_handshake INTEGER NOT NULL
		) WITHOUT ROWID`,
		`CREATE INDEX peer_state_recent ON peer_state (last_handshake)`,
		`PRAGMA user_version = 1`,
	} {
		if _, err := s.db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	now := time.Now()
	if _, err := s.db.Exec(`INSERT INTO peer_state VALUES (?, '198.18.0.2:1', ?)`, keyBytes(1), now.UnixNano()); err != nil {
		t.Fatal(err)
	}
	s.Close()

	s, err = Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var rows, v int
	if err := s.db.QueryRow(`SELECT count(*) FROM peer_state WHERE gateway_key = x''`).Scan(&rows); err != nil || rows != 1 {
		t.Fatalf("version 1 rows kept without a gateway key: %d, %v; want 1", rows, err)
	}
	if err := s.db.QueryRow(`PRAGMA user_version`).Scan(&v); err != nil || v != stateVersion {
		t.Fatalf("user_version = %d, %v; want %d", v, err, stateVersion)
	}
	if got, err := s.LoadPeerState(ctx, gateway, time.Time{}, 10); err != nil || len(got) != 0 {
		t.Fatalf("a version 1 row was returned for a takeover: %v, %v", got, err)
	}
	if err := s.SavePeerState(ctx, []hooks.PeerState{state(1, "198.18.0.3:3", now)}); err != nil {
		t.Fatal(err)
	}
	if got, err := s.LoadPeerState(ctx, gateway, time.Time{}, 10); err != nil || len(got) != 1 || got[0].Endpoint.Port() != 3 {
		t.Fatalf("after a save under the gateway's key: %v, %v", got, err)
	}
	// Delete takes every row of the peer, old and new.
	if _, err := s.Delete(ctx, key(1)); err != nil {
		t.Fatal(err)
	}
	if err := s.db.QueryRow(`SELECT count(*) FROM peer_state`).Scan(&rows); err != nil || rows != 0 {
		t.Fatalf("after Delete %d state rows, %v; want none", rows, err)
	}
}
