package restart

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"github.com/wghooks/wghooks/device/feature"
	"github.com/wghooks/wghooks/device/feature/featuretest"
	"github.com/wghooks/wghooks/uapi"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/curve25519"
	wgdevice "golang.zx2c4.com/wireguard/device"
)

func stateTestKey(b byte) (priv [32]byte, pub feature.Key) {
	for i := range priv {
		priv[i] = b + byte(i)
	}
	priv[0] &= 248
	priv[31] = (priv[31] & 127) | 64
	p, _ := curve25519.X25519(priv[:], curve25519.Basepoint)
	copy(pub[:], p)
	return priv, pub
}

func TestStateFileRoundTripAtomic0600(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "sub")
	path := filepath.Join(dir, "wg0.json")
	_, own := stateTestKey(1)
	_, peer := stateTestKey(2)
	hs := time.Date(2026, 5, 1, 12, 0, 0, 5, time.UTC)
	want := &stateFile{Version: stateVersion, PublicKey: feature.EncodeKey(own), Written: hs.Add(time.Minute),
		Peers: []statePeer{{PublicKey: feature.EncodeKey(peer), Endpoint: "198.18.0.7:41641", LastHandshake: hs}}}
	if err := writeStateFile(path, want); err != nil {
		t.Fatal(err)
	}
	// Twice: the second write replaces the first.
	want.Peers[0].Endpoint = "[fd00::7]:41641"
	if err := writeStateFile(path, want); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("state file mode = %v, want 0600", st.Mode().Perm())
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("directory holds %d entries, want only the state file (no temporary left)", len(entries))
	}
	got, err := readStateFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got.Peers[0].Endpoint != "[fd00::7]:41641" || !got.Peers[0].LastHandshake.Equal(hs) || got.PublicKey != want.PublicKey {
		t.Errorf("read back %+v, want %+v", got, want)
	}
}

func TestParseStateRejects(t *testing.T) {
	_, own := stateTestKey(1)
	good := `{"version":1,"public_key":"` + feature.EncodeKey(own) + `","written":"2026-05-01T12:00:00Z","peers":[{"public_key":"` + feature.EncodeKey(own) + `","endpoint":"198.18.0.1:1"}]}`
	if _, err := parseState([]byte(good)); err != nil {
		t.Fatalf("good file rejected: %v", err)
	}
	for name, data := range map[string]string{
		"empty":        "",
		"truncated":    good[:len(good)/2],
		"garbage":      "\x00\x01not json",
		"version":      strings.Replace(good, `"version":1`, `"version":2`, 1),
		"no version":   strings.Replace(good, `"version":1,`, ``, 1),
		"own key":      strings.Replace(good, `"public_key":"`+feature.EncodeKey(own)+`","written"`, `"public_key":"abc","written"`, 1),
		"endpoint":     strings.Replace(good, `198.18.0.1:1`, `host.example:1`, 1),
		"trailing":     good + `{}`,
		"peer key hex": strings.Replace(good, `"peers":[{"public_key":"`+feature.EncodeKey(own), `"peers":[{"public_key":"`+hex.EncodeToString(own[:]), 1),
	} {
		if _, err := parseState([]byte(data)); err == nil {
			t.Errorf("%s: parsed without error", name)
		} else if !strings.HasPrefix(err.Error(), "failed to parse state file") {
			t.Errorf("%s: error %q does not say what failed", name, err)
		}
	}
}

func FuzzParseState(f *testing.F) {
	_, own := stateTestKey(1)
	f.Add([]byte(`{"version":1,"public_key":"` + feature.EncodeKey(own) + `","written":"2026-05-01T12:00:00Z","peers":[]}`))
	f.Add([]byte(`{"version":1,"peers":[{"endpoint":"[::1]:0"}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := parseState(data)
		if err != nil {
			return
		}
		// Whatever parses must plan without panicking.
		planRestore(s, &feature.View{}, func(feature.Key) string { return "" }, time.Now(), time.Hour)
	})
}

func TestPlanRestore(t *testing.T) {
	priv, own := stateTestKey(1)
	_, other := stateTestKey(9)
	keys := make([]feature.Key, 7)
	for i := range keys {
		_, keys[i] = stateTestKey(byte(20 + i))
	}
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	hs := now.Add(-time.Minute)
	file := &stateFile{Version: 1, PublicKey: feature.EncodeKey(own), Written: now.Add(-10 * time.Second), Peers: []statePeer{
		{PublicKey: feature.EncodeKey(keys[0]), Endpoint: "198.18.0.10:1000", LastHandshake: hs},                                          // roamed: restored
		{PublicKey: feature.EncodeKey(keys[1]), Endpoint: "198.18.0.11:1000", LastHandshake: hs},                                          // not configured here
		{PublicKey: feature.EncodeKey(keys[2]), Endpoint: "198.18.0.12:1000", LastHandshake: hs},                                          // has a session already
		{PublicKey: feature.EncodeKey(keys[3]), Endpoint: "198.18.0.13:1000"},                                                             // never reached
		{PublicKey: feature.EncodeKey(keys[4]), Endpoint: "198.18.0.14:1000", ConfiguredEndpoint: "198.18.1.14:1000", LastHandshake: hs},  // operator changed it
		{PublicKey: feature.EncodeKey(keys[5]), Endpoint: "198.18.0.15:1000", ConfiguredEndpoint: "198.18.1.15:1000", LastHandshake: hs},  // same config: restored
		{PublicKey: feature.EncodeKey(keys[6]), Endpoint: "198.18.0.16:1000", ConfiguredEndpoint: "198.18.0.16:1000", LastHandshake: hs}}, // already there
	}
	view := &feature.View{PrivateKey: priv, Peers: []feature.PeerView{
		{PublicKey: keys[0]},
		{PublicKey: keys[2], Endpoint: "198.18.2.12:1000", Handshake: now},
		{PublicKey: keys[3]},
		{PublicKey: keys[4], Endpoint: "198.18.2.14:1000"},
		{PublicKey: keys[5], Endpoint: "198.18.1.15:1000"},
		{PublicKey: keys[6], Endpoint: "198.18.0.16:1000"},
	}}
	configured := map[feature.Key]string{keys[4]: "198.18.2.14:1000", keys[5]: "198.18.1.15:1000", keys[6]: "198.18.0.16:1000"}
	conf := func(pk feature.Key) string { return configured[pk] }

	items, err := planRestore(file, view, conf, now, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	got := map[feature.Key]string{}
	for _, it := range items {
		got[it.pk] = it.endpoint
	}
	want := map[feature.Key]string{keys[0]: "198.18.0.10:1000", keys[5]: "198.18.0.15:1000"}
	if len(got) != len(want) || got[keys[0]] != want[keys[0]] || got[keys[5]] != want[keys[5]] {
		t.Errorf("restored %v, want %v", got, want)
	}

	if _, err := planRestore(file, view, conf, now.Add(2*time.Hour), time.Hour); err == nil || !strings.Contains(err.Error(), "stale") {
		t.Errorf("stale file: err = %v", err)
	}
	file.PublicKey = feature.EncodeKey(other)
	if _, err := planRestore(file, view, conf, now, time.Hour); err == nil || !strings.Contains(err.Error(), "another private key") {
		t.Errorf("file of another key: err = %v", err)
	}
	if _, err := planRestore(file, &feature.View{}, conf, now, time.Hour); err == nil {
		t.Error("device without private key: no error")
	}
}

func TestDeadPeerStepNeverStorms(t *testing.T) {
	const timeout = 2 * time.Second
	var s deadPeerState
	t0 := time.Unix(1000, 0)
	s.step(0, 0, t0, timeout)
	var attempts []time.Duration
	// Sending every 100 ms, never hearing back, for 10 minutes.
	for i := 1; i <= 6000; i++ {
		now := t0.Add(time.Duration(i) * 100 * time.Millisecond)
		if s.step(0, uint64(i), now, timeout) {
			attempts = append(attempts, now.Sub(t0))
		}
	}
	if len(attempts) == 0 || attempts[0] > timeout+200*time.Millisecond {
		t.Fatalf("first attempt at %v, want about %v", attempts, timeout)
	}
	for i := 1; i < len(attempts); i++ {
		if gap := attempts[i] - attempts[i-1]; gap < wgdevice.RekeyTimeout {
			t.Fatalf("attempts %v and %v only %v apart", attempts[i-1], attempts[i], gap)
		}
	}
	if len(attempts) > 12 {
		t.Errorf("%d attempts in 10 minutes to a silent peer: %v", len(attempts), attempts)
	}
	// Heard from: back to normal, and a quiet peer is left alone.
	now := t0.Add(11 * time.Minute)
	if s.step(1, 6000, now, timeout) {
		t.Error("attempt on the sample where the peer was heard")
	}
	if s.step(1, 6000, now.Add(time.Hour), timeout) {
		t.Error("attempt although nothing was sent")
	}
	if s.step(1, 6001, now.Add(time.Hour+time.Second), timeout) || !s.step(1, 6001, now.Add(time.Hour+3*time.Second), timeout) {
		t.Error("after being heard, a new unanswered send did not lead to an attempt after the timeout")
	}
}

func TestRemoveStaleTemps(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "wg0.json")
	old := filepath.Join(dir, ".wg0.json.tmp-123")
	fresh := filepath.Join(dir, ".wg0.json.tmp-456")
	other := filepath.Join(dir, ".wg1.json.tmp-789")
	for _, f := range []string{old, fresh, other} {
		if err := os.WriteFile(f, []byte("{"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	long := time.Now().Add(-time.Hour)
	os.Chtimes(old, long, long)
	os.Chtimes(other, long, long)
	removeStaleTemps(path)
	if _, err := os.Stat(old); !os.IsNotExist(err) {
		t.Error("a torn write's leftover was kept")
	}
	if _, err := os.Stat(fresh); err != nil {
		t.Error("a write that may be under way was removed")
	}
	if _, err := os.Stat(other); err != nil {
		t.Error("another interface's file was removed")
	}
}

// A file written before the "jit" flag existed parses, every entry
// static: no section comes out of it.
func TestStateFileWithoutJITFlagLoads(t *testing.T) {
	_, own := stateTestKey(1)
	k := feature.EncodeKey(own)
	old := fmt.Sprintf(`{"version":1,"public_key":%q,"written":"2026-05-22T21:04:24Z","peers":[{"public_key":%q,"endpoint":"127.0.0.1:9","last_handshake":"2026-05-22T21:03:58Z"}]}`, k, k)
	f, err := parseState([]byte(old))
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Peers) != 1 || f.Peers[0].JIT || f.Sections != nil {
		t.Fatalf("peers %+v, sections %v; want one static entry and no section", f.Peers, f.Sections)
	}
}

// A file of the previous version, whose just-in-time entries carry
// "jit": true and which has no sections, reads as if it held a "jit"
// section listing those entries; they stay in "peers" too. A file with
// sections is read as written.
func TestStateFileJITFlagsBecomeSection(t *testing.T) {
	_, own := stateTestKey(1)
	_, a := stateTestKey(2)
	_, b := stateTestKey(3)
	v1 := fmt.Sprintf(`{"version":1,"public_key":%q,"written":"2026-05-22T21:04:24Z","peers":[`+
		`{"public_key":%q,"endpoint":"198.18.0.2:1","last_handshake":"2026-05-22T21:03:58Z","jit":true},`+
		`{"public_key":%q,"endpoint":"198.18.0.3:1","last_handshake":"2026-05-22T21:03:59Z"}]}`,
		feature.EncodeKey(own), feature.EncodeKey(a), feature.EncodeKey(b))
	f, err := parseState([]byte(v1))
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Peers) != 2 || f.Peers[0].JIT {
		t.Fatalf("peers %+v, want both entries, flags cleared", f.Peers)
	}
	want := fmt.Sprintf(`{"peers":[{"public_key":%q,"endpoint":"198.18.0.2:1","last_handshake":"2026-05-22T21:03:58Z"}]}`, feature.EncodeKey(a))
	if got := string(f.Sections["jit"]); got != want || len(f.Sections) != 1 {
		t.Fatalf("sections %v, want jit: %s", f.Sections, want)
	}

	withSections := strings.Replace(v1, `"peers":[`, `"sections":{"jit":{"peers":[]}},"peers":[`, 1)
	f, err = parseState([]byte(withSections))
	if err != nil {
		t.Fatal(err)
	}
	if got := string(f.Sections["jit"]); got != `{"peers":[]}` {
		t.Fatalf("a file with sections had its jit section replaced by %s", got)
	}
}

// Sections are written and read back as the features gave them.
func TestStateFileSectionsRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "wg0.json")
	_, own := stateTestKey(1)
	f := &stateFile{Version: stateVersion, PublicKey: feature.EncodeKey(own), Written: time.Now().UTC(),
		Sections: map[string]json.RawMessage{"jit": json.RawMessage(`{"peers":[]}`), "other": json.RawMessage(`[1,2]`)}}
	if err := writeStateFile(path, f); err != nil {
		t.Fatal(err)
	}
	got, err := readStateFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for name, raw := range f.Sections {
		var a, b any
		json.Unmarshal(raw, &a)
		json.Unmarshal(got.Sections[name], &b)
		if fmt.Sprint(a) != fmt.Sprint(b) {
			t.Errorf("section %q read back as %s, want %s", name, got.Sections[name], raw)
		}
	}
}

// TestConfiguredEndpointsFromOperatorOnly: the state file's
// configured_endpoint is the operator's; an endpoint a feature sets (a
// just-in-time install, the restart's own restore) is not recorded, and
// any origin's removal forgets the peer.
func TestConfiguredEndpointsFromOperatorOnly(t *testing.T) {
	h, _ := featuretest.New(t)
	r, err := New(h, Config{NoStaleWake: true}, Wiring{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)
	k := feature.Key{7}
	h.AddPeer(k)
	hk := hex.EncodeToString(k[:])
	change := func(origin string, lines ...string) {
		t.Helper()
		set, err := uapi.ParseSet(lines, nil)
		if err != nil {
			t.Fatal(err)
		}
		r.Configured(feature.Change{Set: set, Origin: origin})
	}
	change("jit", "public_key="+hk, "endpoint=198.18.0.1:1")
	change("restart", "public_key="+hk, "update_only=true", "endpoint=198.18.0.2:1")
	if got := r.configuredEndpoint(k); got != "" {
		t.Fatalf("a feature's endpoint %q was recorded as configured", got)
	}
	change("", "public_key="+hk, "endpoint=198.18.0.3:1")
	if got := r.configuredEndpoint(k); got != "198.18.0.3:1" {
		t.Fatalf("the operator's endpoint recorded as %q", got)
	}
	change("jit", "public_key="+hk, "remove=true")
	if got := r.configuredEndpoint(k); got != "" {
		t.Fatalf("a removed peer keeps its configured endpoint %q", got)
	}
}

// A peer restored at its saved endpoint and silent since keeps that
// file's last handshake in the next file: in its peers entry and in the
// view every section is built from (one carried record, not one per
// feature).
func TestCarriedHandshakeReachesSections(t *testing.T) {
	h, _ := featuretest.New(t)
	priv, _ := stateTestKey(1)
	_, pk := stateTestKey(2)
	hs := time.Date(2026, 5, 22, 12, 0, 0, 0, time.UTC)
	sec := &viewSection{}
	r, err := New(h, Config{StateFile: filepath.Join(t.TempDir(), "wg0.json")}, Wiring{Sections: func() []feature.StateSection { return []feature.StateSection{sec} }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)
	r.state.Lock()
	r.state.carried[pk] = restoreItem{pk: pk, endpoint: "198.18.0.2:1", lastHandshake: hs}
	v := &feature.View{PrivateKey: priv, Peers: []feature.PeerView{{PublicKey: pk, Endpoint: "198.18.0.2:1"}}}
	f := r.buildStateLocked(v, hs.Add(time.Minute))
	r.state.Unlock()
	if f == nil || len(f.Peers) != 1 || !f.Peers[0].LastHandshake.Equal(hs) {
		t.Fatalf("state file %+v, want the peer with its carried handshake", f)
	}
	if len(sec.seen) != 1 || !sec.seen[0].Handshake.Equal(hs) {
		t.Fatalf("the section saw %+v, want the carried handshake", sec.seen)
	}
	if !v.Peers[0].Handshake.IsZero() {
		t.Fatal("building the state file changed the caller's view")
	}
}

// viewSection is a state section that records the view it was given.
type viewSection struct {
	feature.Base
	seen []feature.PeerView
}

func (*viewSection) Name() string { return "view" }
func (s *viewSection) SaveState(v *feature.View, _ time.Time) (json.RawMessage, error) {
	s.seen = v.Peers
	return nil, nil
}
func (*viewSection) RestoreState(json.RawMessage, feature.Restore) {}
