package jit

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/wghooks/wghooks/device/feature"
	"github.com/wghooks/wghooks/device/feature/featuretest"
)

func TestPlanRestore(t *testing.T) {
	now := time.Date(2026, 5, 22, 12, 0, 0, 0, time.UTC)
	key := func(b byte) feature.Key { return feature.Key{b} }
	entry := func(b byte, ago time.Duration) sectionPeer {
		e := sectionPeer{PublicKey: feature.EncodeKey(key(b)), Endpoint: fmt.Sprintf("[::ffff:127.0.0.1]:%d", 1000+int(b))}
		if ago >= 0 {
			e.LastHandshake = now.Add(-ago)
		}
		return e
	}
	sec := &section{Peers: []sectionPeer{
		entry(1, 3*time.Minute),
		entry(3, 25*time.Hour),   // older than max age
		entry(4, -1),             // never handshook
		entry(5, time.Minute),    // most recent
		entry(6, 2*time.Minute),  // installed already
		entry(7, 10*time.Minute), // over the cap
		entry(5, time.Minute),    // duplicate
	}}
	installed := func(pk feature.Key) bool { return pk == key(6) }
	items, tooOld, overCap := planRestore(sec, installed, now, 24*time.Hour, 2)
	if len(items) != 2 || items[0].pk != key(5) || items[1].pk != key(1) {
		t.Fatalf("items %+v, want keys 5 then 1", items)
	}
	if items[0].endpoint.String() != "127.0.0.1:1005" {
		t.Errorf("endpoint %v, want the unmapped 127.0.0.1:1005", items[0].endpoint)
	}
	if tooOld != 2 || overCap != 1 {
		t.Errorf("tooOld %d, overCap %d; want 2 and 1", tooOld, overCap)
	}
}

// TestSaveStateSection: the section lists the just-in-time peers with an
// endpoint, with the last handshake the view gives (the state file's
// carried one for a restored silent peer), and parses back; a static peer or one without an endpoint is left out, and
// nothing to list is no section.
func TestSaveStateSection(t *testing.T) {
	h, _ := featuretest.New(t)
	j := newJIT(h, Config{})
	t.Cleanup(j.Close)
	a, b, static := feature.Key{1}, feature.Key{2}, feature.Key{3}
	hs := time.Date(2026, 5, 22, 12, 0, 0, 0, time.UTC)
	v := &feature.View{Peers: []feature.PeerView{
		{PublicKey: a, Endpoint: "198.18.0.1:1", Handshake: hs},
		{PublicKey: b},
		{PublicKey: static, Endpoint: "198.18.0.3:1", Handshake: hs},
	}}
	if raw, err := j.SaveState(v, hs); raw != nil || err != nil {
		t.Fatalf("no just-in-time peers: section %s, %v; want none", raw, err)
	}
	for _, k := range []feature.Key{a, b} {
		h.AddPeer(k)
		j.mark(k, true)
	}
	raw, err := j.SaveState(v, hs)
	if err != nil {
		t.Fatal(err)
	}
	sec, err := parseSection(raw)
	if err != nil {
		t.Fatalf("%v: %s", err, raw)
	}
	if len(sec.Peers) != 1 || sec.Peers[0].PublicKey != feature.EncodeKey(a) || !sec.Peers[0].LastHandshake.Equal(hs) {
		t.Fatalf("section %s, want only peer a with its carried handshake", raw)
	}
	var generic map[string][]map[string]any
	if err := json.Unmarshal(raw, &generic); err != nil || len(generic["peers"]) != 1 || generic["peers"][0]["endpoint"] != "198.18.0.1:1" {
		t.Fatalf("section %s is not {\"peers\":[{..., \"endpoint\": ...}]}", raw)
	}
}

func TestParseSectionRejects(t *testing.T) {
	k := feature.EncodeKey(feature.Key{1})
	for name, data := range map[string]string{
		"garbage":  "[",
		"key":      `{"peers":[{"public_key":"abc","endpoint":"127.0.0.1:1"}]}`,
		"endpoint": `{"peers":[{"public_key":"` + k + `","endpoint":"host.example:1"}]}`,
	} {
		if _, err := parseSection(json.RawMessage(data)); err == nil || !strings.HasPrefix(err.Error(), "failed to parse the jit section") {
			t.Errorf("%s: %v, want a parse error", name, err)
		}
	}
}

// TestRestoreStateWithoutProvider: a section on a device without a
// provider restores nothing and says so.
func TestRestoreStateWithoutProvider(t *testing.T) {
	h, _ := featuretest.New(t)
	j := newJIT(h, Config{})
	t.Cleanup(j.Close)
	k := feature.EncodeKey(feature.Key{1})
	j.RestoreState(json.RawMessage(`{"peers":[{"public_key":"`+k+`","endpoint":"127.0.0.1:1","last_handshake":"2026-05-22T21:03:58Z"}]}`), feature.Restore{MaxAge: time.Hour})
	if !h.Logged("state file lists 1 just-in-time peers; no provider: not restored") {
		t.Fatalf("log: %q", h.Logs())
	}
}
