package main

import (
	"context"
	"errors"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wghooks/wghooks/hooks"
	"github.com/wghooks/wghooks/hooks/httpprovider"
	"github.com/wghooks/wghooks/hooks/sqlstore"
)

func TestParseJITOutboundOptions(t *testing.T) {
	for v, want := range map[string]bool{"": false, "off": false, "on": true} {
		d, _, err := testSettings(t, "wg7", map[string]string{envJITOutbound: v})
		if err != nil || d.cfg.JIT.Outbound != want {
			t.Fatalf("%s=%q: outbound %v, err %v; want %v", envJITOutbound, v, d.cfg.JIT.Outbound, err, want)
		}
		if _, ok := d.cfg.JIT.Provider.(hooks.AddrProvider); !ok {
			t.Fatalf("the daemon's store %T cannot look up addresses", d.cfg.JIT.Provider)
		}
	}
	if _, _, err := testSettings(t, "wg7", map[string]string{envJITOutbound: "yes"}); err == nil || !strings.Contains(err.Error(), `"yes"`) {
		t.Fatalf("bad value: %v, want an error quoting it", err)
	}

	// The HTTP provider gets its address URL.
	d, _, err := testSettings(t, "wg7", map[string]string{
		envPeerURL: "https://cp.example/peers", envPeerAddrURL: "https://cp.example/peers?addr={addr}", envJITOutbound: "on",
	})
	if _, ok := d.cfg.JIT.Provider.(*httpprovider.Provider); err != nil || !ok {
		t.Fatalf("HTTP with an address URL: %T, %v", d.cfg.JIT.Provider, err)
	}
	if _, _, err := testSettings(t, "wg7", map[string]string{envPeerURL: "https://cp.example/peers", envPeerAddrURL: "https://cp.example/by-addr"}); err == nil {
		t.Fatal("an address URL without {addr} was accepted")
	}

	// The daemon's store answers by address; a missing one knows nobody.
	missing := &daemonStore{path: filepath.Join(t.TempDir(), "none.db")}
	if _, err := missing.LookupAddr(context.Background(), netip.MustParseAddr("198.18.0.2")); !errors.Is(err, hooks.ErrUnknownPeer) {
		t.Fatalf("missing store: %v, want ErrUnknownPeer", err)
	}
	path := filepath.Join(t.TempDir(), "peers.db")
	s, err := sqlstore.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	key := hooks.PublicKey{1}
	if err := s.Put(context.Background(), sqlstore.Peer{PeerConfig: hooks.PeerConfig{
		PublicKey: key, AllowedIPs: []netip.Prefix{netip.MustParsePrefix("198.18.0.2/32")},
	}}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	ds := &daemonStore{path: path, explicit: true}
	defer ds.close()
	if cfg, err := ds.LookupAddr(context.Background(), netip.MustParseAddr("198.18.0.2")); err != nil || cfg.PublicKey != key {
		t.Fatalf("store lookup by address: %v, %v", cfg.PublicKey, err)
	}
}
