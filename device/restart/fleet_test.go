package restart

import (
	"context"
	"encoding/json"
	"errors"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wghooks/wghooks/device/feature"
	"github.com/wghooks/wghooks/device/feature/featuretest"
	"github.com/wghooks/wghooks/hooks"
)

// fakeStateStore records the batches it is given and fails while fail is
// set.
type fakeStateStore struct {
	mu      sync.Mutex
	batches [][]hooks.PeerState
	loads   int
	since   time.Time
	limit   int
	gateway hooks.PublicKey
	fail    error
	states  []hooks.PeerState
}

func (s *fakeStateStore) SavePeerState(_ context.Context, states []hooks.PeerState) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail != nil {
		return s.fail
	}
	s.batches = append(s.batches, append([]hooks.PeerState(nil), states...))
	return nil
}

// LoadPeerState returns the states written by gateway, as the contract
// says.
func (s *fakeStateStore) LoadPeerState(_ context.Context, gateway hooks.PublicKey, since time.Time, limit int) ([]hooks.PeerState, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.loads++
	s.since, s.limit, s.gateway = since, limit, gateway
	var out []hooks.PeerState
	for _, st := range s.states {
		if st.Gateway == gateway {
			out = append(out, st)
		}
	}
	return out, nil
}

func (s *fakeStateStore) sizes() []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []int
	for _, b := range s.batches {
		out = append(out, len(b))
	}
	s.batches = nil
	return out
}

func fleetPeers(n int, hs time.Time) []feature.PeerView {
	peers := make([]feature.PeerView, n)
	for i := range peers {
		_, pk := stateTestKey(byte(i)) // distinct for i < 256
		pk[31] ^= byte(i >> 8)
		ap := netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 18, byte(i >> 8), byte(i)}), 51820)
		peers[i] = feature.PeerView{PublicKey: pk, Endpoint: ap.String(), Addr: ap, Handshake: hs}
	}
	return peers
}

// Saves go in batches of storeBatch, carry only what changed since the
// last save the store took, skip peers without an endpoint or a
// handshake, retry a failed batch at the next save, name the device's
// key as the writer, and start over when that key changes.
func TestFleetStateSavedInBatchesOfChanges(t *testing.T) {
	h, _ := featuretest.New(t)
	st := &fakeStateStore{}
	r, err := New(h, Config{StoreInterval: -1}, Wiring{Store: st})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	hs := time.Now().Add(-time.Minute)
	peers := fleetPeers(storeBatch*2+76, hs)
	peers = append(peers, feature.PeerView{PublicKey: feature.Key{1}}, feature.PeerView{PublicKey: feature.Key{2}, Addr: netip.MustParseAddrPort("198.18.0.1:1")})

	gw := feature.Key{0xf1}
	r.stored.Lock()
	defer r.stored.Unlock()
	if err := r.saveStoreLocked(ctx, gw, peers, "test"); err != nil {
		t.Fatal(err)
	}
	for _, b := range st.batches {
		for _, s := range b {
			if s.Gateway != hooks.PublicKey(gw) {
				t.Fatalf("state %+v saved without the device's key as its gateway", s)
			}
		}
	}
	if got := st.sizes(); len(got) != 3 || got[0] != storeBatch || got[1] != storeBatch || got[2] != 76 {
		t.Fatalf("first save: batches %v, want %d, %d, 76", got, storeBatch, storeBatch)
	}
	if err := r.saveStoreLocked(ctx, gw, peers, "test"); err != nil {
		t.Fatal(err)
	}
	if got := st.sizes(); len(got) != 0 {
		t.Fatalf("nothing changed: batches %v, want none", got)
	}
	// One peer roamed, another handshook again.
	peers[3].Addr = netip.MustParseAddrPort("198.18.200.1:4000")
	peers[7].Handshake = hs.Add(30 * time.Second)
	st.fail = errors.New("store down")
	if err := r.saveStoreLocked(ctx, gw, peers, "test"); err == nil {
		t.Fatal("a save to a failing store reported no error")
	}
	st.fail = nil
	if err := r.saveStoreLocked(ctx, gw, peers, "test"); err != nil {
		t.Fatal(err)
	}
	if got := st.sizes(); len(got) != 1 || got[0] != 2 {
		t.Fatalf("after a failed save: batches %v, want one of the 2 changed peers", got)
	}
	// A new private key: the store holds nothing under it yet.
	if err := r.saveStoreLocked(ctx, feature.Key{0xf2}, peers, "test"); err != nil {
		t.Fatal(err)
	}
	if got := st.sizes(); len(got) != 3 {
		t.Fatalf("under a new key: batches %v, want every peer again", got)
	}
}

// The store's states become a state file for the device's own key: no
// configured endpoint (only configured peers without one take them), a
// "jit" section with the same entries, the most recent state of a key,
// and never the device's own key or an unusable entry.
func TestTakeoverFile(t *testing.T) {
	_, own := stateTestKey(1)
	_, a := stateTestKey(2)
	_, b := stateTestKey(3)
	now := time.Now()
	f, err := takeoverFile(own, []hooks.PeerState{
		{Key: hooks.PublicKey(a), Endpoint: netip.MustParseAddrPort("[::ffff:198.18.0.2]:1"), LastHandshake: now.Add(-time.Second)},
		{Key: hooks.PublicKey(a), Endpoint: netip.MustParseAddrPort("198.18.0.9:9"), LastHandshake: now.Add(-time.Minute)},
		{Key: hooks.PublicKey(own), Endpoint: netip.MustParseAddrPort("198.18.0.1:1"), LastHandshake: now},
		{Key: hooks.PublicKey(b), Endpoint: netip.MustParseAddrPort("198.18.0.3:0"), LastHandshake: now},
	}, now)
	if err != nil {
		t.Fatal(err)
	}
	if f.PublicKey != feature.EncodeKey(own) || len(f.Peers) != 1 || f.Peers[0].Endpoint != "198.18.0.2:1" || f.Peers[0].ConfiguredEndpoint != "" {
		t.Fatalf("takeover file %+v, want peer a at 198.18.0.2:1 only", f)
	}
	got, err := parseState(mustJSON(t, f))
	if err != nil {
		t.Fatalf("the takeover file does not parse as a state file: %v", err)
	}
	if string(got.Sections["jit"]) != `{"peers":[{"public_key":"`+feature.EncodeKey(a)+`","endpoint":"198.18.0.2:1","last_handshake":"`+f.Peers[0].LastHandshake.Format(time.RFC3339Nano)+`"}]}` {
		t.Fatalf("jit section %s", got.Sections["jit"])
	}
	if _, err := takeoverFile(own, nil, now); err == nil {
		t.Fatal("an empty takeover made a state file")
	}
}

// With Takeover off, or without a store, a start without a state file
// never reads the store.
func TestTakeoverOffReadsNothing(t *testing.T) {
	for _, tc := range []struct {
		name     string
		takeover bool
		store    bool
	}{{"off", false, true}, {"no store", true, false}} {
		t.Run(tc.name, func(t *testing.T) {
			h, _ := featuretest.New(t)
			st := &fakeStateStore{states: []hooks.PeerState{{Key: hooks.PublicKey{9}, Endpoint: netip.MustParseAddrPort("198.18.0.2:1"), LastHandshake: time.Now()}}}
			w := Wiring{ProviderPeers: true}
			if tc.store {
				w.Store = st
			}
			r, err := New(h, Config{Takeover: tc.takeover, StoreInterval: -1}, w)
			if err != nil {
				t.Fatal(err)
			}
			r.BeforeUp()
			r.startup.Lock()
			pending := r.startup.restorePending
			f := r.takeoverStateLocked(feature.Key{1}, time.Now())
			r.startup.Unlock()
			if pending || f != nil || st.loads != 0 {
				t.Fatalf("restore pending %v, takeover %v, store read %d times; want nothing", pending, f, st.loads)
			}
		})
	}
}

func mustJSON(t *testing.T, f *stateFile) []byte {
	t.Helper()
	data, err := json.Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// With Takeover on, a start without a state file reads the store once,
// for the handshakes within TakeoverWindow.
func TestTakeoverReadsTheWindow(t *testing.T) {
	h, _ := featuretest.New(t)
	_, peer := stateTestKey(2)
	own := feature.Key{1}
	st := &fakeStateStore{states: []hooks.PeerState{
		{Key: hooks.PublicKey(peer), Endpoint: netip.MustParseAddrPort("198.18.0.2:1"), LastHandshake: time.Now(), Gateway: hooks.PublicKey(own)},
		{Key: hooks.PublicKey{7}, Endpoint: netip.MustParseAddrPort("198.18.0.7:1"), LastHandshake: time.Now(), Gateway: hooks.PublicKey{0xf2}},
	}}
	r, err := New(h, Config{Takeover: true, TakeoverWindow: 90 * time.Second, StoreInterval: -1}, Wiring{ProviderPeers: true, Store: st})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	r.startup.Lock()
	f := r.takeoverStateLocked(own, now)
	r.startup.Unlock()
	if f == nil || len(f.Peers) != 1 || st.loads != 1 || st.gateway != hooks.PublicKey(own) {
		t.Fatalf("takeover %+v after %d reads asking for gateway %v, want the one peer of the device's key after one read", f, st.loads, st.gateway)
	}
	if !st.since.Equal(now.Add(-90*time.Second)) || st.limit != takeoverLimit {
		t.Errorf("read since %v, limit %d; want %v, %d", st.since, st.limit, now.Add(-90*time.Second), takeoverLimit)
	}
}

// A state file counts as missing for a takeover when it was written for
// another private key or before the takeover window; otherwise it is
// used.
func TestStateFileSupersededByTakeover(t *testing.T) {
	_, own := stateTestKey(1)
	_, other := stateTestKey(2)
	now := time.Now()
	for _, tc := range []struct {
		name    string
		key     feature.Key
		written time.Time
		want    string
	}{
		{"fresh", own, now.Add(-time.Minute), ""},
		{"at the window", own, now.Add(-5 * time.Minute), ""},
		{"stale", own, now.Add(-6 * time.Minute), "more than the takeover window"},
		{"another key", other, now, "another private key"},
	} {
		f := &stateFile{Version: stateVersion, PublicKey: feature.EncodeKey(tc.key), Written: tc.written}
		got := supersededBy(f, own, now, 5*time.Minute)
		if (tc.want == "") != (got == "") || !strings.Contains(got, tc.want) {
			t.Errorf("%s: supersededBy = %q, want %q", tc.name, got, tc.want)
		}
	}
}
