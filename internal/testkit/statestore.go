package testkit

// The hooks.StateStore contract, checked the same way for every store
// (SQLite, PostgreSQL): two connections to one empty store stand for two
// gateways of a fleet.

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/wghooks/wghooks/hooks"
)

// CheckStateStore checks the hooks.StateStore contract on a and b, two
// connections to the same empty store: a batch is all or nothing; per
// key the later handshake wins, within a batch and across connections,
// whatever the order of the writes; LoadPeerState selects since, most
// recent first, at most limit; state written under one gateway key is
// never returned to a reader asking with another, and does not displace
// that other key's state of the same peer.
func CheckStateStore(t *testing.T, a, b hooks.StateStore) {
	t.Helper()
	ctx := context.Background()
	key := func(n byte) hooks.PublicKey {
		var k hooks.PublicKey
		for i := range k {
			k[i] = n
		}
		return k
	}
	// gw is the fleet's gateway key; foreign another fleet's (or a
	// misconfigured machine's) sharing the database.
	gw, foreign := key(0xf1), key(0xf2)
	st := func(n byte, ep string, at time.Time) hooks.PeerState {
		return hooks.PeerState{Key: key(n), Endpoint: netip.MustParseAddrPort(ep), LastHandshake: at, Gateway: gw}
	}
	loadAs := func(s hooks.StateStore, g hooks.PublicKey, since time.Time, limit int) []hooks.PeerState {
		t.Helper()
		got, err := s.LoadPeerState(ctx, g, since, limit)
		if err != nil {
			t.Fatalf("LoadPeerState: %v", err)
		}
		return got
	}
	load := func(s hooks.StateStore, since time.Time, limit int) []hooks.PeerState {
		t.Helper()
		return loadAs(s, gw, since, limit)
	}
	want := func(what string, got []hooks.PeerState, want ...hooks.PeerState) {
		t.Helper()
		ok := len(got) == len(want)
		for i := 0; ok && i < len(want); i++ {
			ok = got[i].Key == want[i].Key && got[i].Endpoint == want[i].Endpoint && got[i].LastHandshake.Equal(want[i].LastHandshake) && got[i].Gateway == want[i].Gateway
		}
		if !ok {
			t.Fatalf("%s: LoadPeerState = %v, want %v", what, got, want)
		}
	}
	t0 := time.Now().Add(-time.Hour).Truncate(time.Microsecond)

	// A batch with an invalid entry writes nothing.
	if err := a.SavePeerState(ctx, []hooks.PeerState{st(1, "198.18.0.2:1", t0), {Key: key(2), LastHandshake: t0}}); err == nil {
		t.Fatal("SavePeerState of a batch with an entry without an endpoint succeeded")
	}
	want("after a refused batch", load(a, time.Time{}, 10))
	noGateway := st(1, "198.18.0.2:1", t0)
	noGateway.Gateway = hooks.PublicKey{}
	if err := a.SavePeerState(ctx, []hooks.PeerState{noGateway}); err == nil {
		t.Fatal("SavePeerState of an entry without a gateway key succeeded")
	}

	// One batch naming key 1 twice, the later entry first.
	if err := a.SavePeerState(ctx, []hooks.PeerState{
		st(1, "198.18.0.2:1002", t0.Add(20*time.Second)),
		st(1, "198.18.0.2:1001", t0.Add(10*time.Second)),
		st(2, "198.18.0.3:2001", t0),
	}); err != nil {
		t.Fatal(err)
	}
	// The other gateway writes an older state of key 1, a newer one of 2.
	if err := b.SavePeerState(ctx, []hooks.PeerState{
		st(1, "198.18.0.9:9", t0.Add(5*time.Second)),
		st(2, "[fd00::3]:2002", t0.Add(30*time.Second)),
	}); err != nil {
		t.Fatal(err)
	}
	want("the later handshake wins", load(a, t0.Add(-time.Hour), 10),
		st(2, "[fd00::3]:2002", t0.Add(30*time.Second)), st(1, "198.18.0.2:1002", t0.Add(20*time.Second)))

	var batch []hooks.PeerState
	for i := 3; i <= 7; i++ {
		batch = append(batch, st(byte(i), "198.18.0.4:1", t0.Add(time.Duration(i)*time.Minute)))
	}
	if err := b.SavePeerState(ctx, batch); err != nil {
		t.Fatal(err)
	}
	want("since", load(b, t0.Add(5*time.Minute), 10), batch[4], batch[3], batch[2])
	want("limit", load(a, time.Time{}, 2), batch[4], batch[3])
	want("limit 0", load(a, time.Time{}, 0))

	// Another gateway key writes a newer state of key 1 and a state of a
	// key of its own: the fleet's reads see neither, and its own reads see
	// only what it wrote.
	alien := func(n byte, ep string, at time.Time) hooks.PeerState {
		s := st(n, ep, at)
		s.Gateway = foreign
		return s
	}
	if err := b.SavePeerState(ctx, []hooks.PeerState{
		alien(1, "198.18.0.66:1", t0.Add(time.Hour)),
		alien(8, "198.18.0.66:8", t0.Add(2*time.Hour)),
	}); err != nil {
		t.Fatal(err)
	}
	want("another gateway key's writes", load(a, t0.Add(7*time.Minute), 10), batch[4])
	want("the fleet's state of keys 1 and 2", load(b, t0.Add(20*time.Second), 10),
		batch[4], batch[3], batch[2], batch[1], batch[0],
		st(2, "[fd00::3]:2002", t0.Add(30*time.Second)), st(1, "198.18.0.2:1002", t0.Add(20*time.Second)))
	want("read with the other gateway key", loadAs(a, foreign, time.Time{}, 10),
		alien(8, "198.18.0.66:8", t0.Add(2*time.Hour)), alien(1, "198.18.0.66:1", t0.Add(time.Hour)))
	want("read with a key that wrote nothing", loadAs(a, key(0xf3), time.Time{}, 10))
	want("read without a gateway key", loadAs(a, hooks.PublicKey{}, time.Time{}, 10))
}
