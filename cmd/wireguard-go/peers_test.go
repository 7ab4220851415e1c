package main

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wghooks/wghooks/hooks"
	"github.com/wghooks/wghooks/hooks/httpprovider"
	"github.com/wghooks/wghooks/hooks/sqlstore"
)

const (
	envPeerURL            = "WGHOOKS_PEER_URL"
	envPeerAddrURL        = "WGHOOKS_PEER_ADDR_URL"
	envJITOutbound        = "WGHOOKS_JIT_OUTBOUND"
	envPeerToken          = "WGHOOKS_PEER_TOKEN"
	envPeerTokenFile      = "WGHOOKS_PEER_TOKEN_FILE"
	envJITIdle            = "WGHOOKS_JIT_IDLE"
	envJITMaxPeers        = "WGHOOKS_JIT_MAX_PEERS"
	envJITRevalidate      = "WGHOOKS_JIT_REVALIDATE"
	envJITNegativeTTL     = "WGHOOKS_JIT_NEGATIVE_TTL"
	envJITLookupTimeout   = "WGHOOKS_JIT_LOOKUP_TIMEOUT"
	envJITRestoreDeadline = "WGHOOKS_JIT_RESTORE_DEADLINE"
)

func TestParseJITOptions(t *testing.T) {
	// Default: the SQLite store at the default path, opened lazily.
	d, _, err := testSettings(t, "wg7", nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg := d.cfg
	ds, ok := cfg.JIT.Provider.(*daemonStore)
	if !ok || ds.path != sqlstore.DefaultDir+"/wg7.db" || ds.explicit {
		t.Fatalf("default provider %#v", cfg.JIT.Provider)
	}

	// A missing default store answers "unknown" and creates nothing.
	missing := &daemonStore{path: filepath.Join(t.TempDir(), "none.db")}
	if _, err := missing.LookupPeer(context.Background(), hooks.PublicKey{1}); !errors.Is(err, hooks.ErrUnknownPeer) {
		t.Fatalf("missing store: %v, want ErrUnknownPeer", err)
	}

	// Off.
	d, _, err = testSettings(t, "wg7", map[string]string{sqlstore.EnvPath: "off"})
	if err != nil || d.cfg.JIT.Provider != nil {
		t.Fatalf("off: err %v, provider %v", err, d.cfg.JIT.Provider)
	}

	// HTTP and tuning.
	d, _, err = testSettings(t, "wg7", map[string]string{
		envPeerURL: "https://cp.example/peers", envPeerToken: "t",
		envJITIdle: "off", envJITRevalidate: "30s", envJITMaxPeers: "100",
		envJITNegativeTTL: "5s", envJITLookupTimeout: "1s", envJITRestoreDeadline: "30s",
	})
	if err != nil {
		t.Fatal(err)
	}
	cfg = d.cfg
	if _, ok := cfg.JIT.Provider.(*httpprovider.Provider); !ok {
		t.Fatalf("URL set: provider %T", cfg.JIT.Provider)
	}
	j := cfg.JIT
	if j.IdleTimeout >= 0 || j.RevalidateInterval != 30*time.Second || j.MaxPeers != 100 ||
		j.NegativeTTL != 5*time.Second || j.LookupTimeout != time.Second || j.RestoreDeadline != 30*time.Second {
		t.Fatalf("tuning: %+v", j)
	}

	for k, v := range map[string]string{
		envJITIdle:            "soon",
		envJITNegativeTTL:     "off",
		envJITMaxPeers:        "-3",
		envPeerURL:            "ftp://x",
		envPeerTokenFile:      "/nonexistent/token",
		envJITLookupTimeout:   "0s",
		envJITRestoreDeadline: "off",
	} {
		kv := map[string]string{k: v}
		if k == envPeerTokenFile {
			kv[envPeerURL] = "http://x"
		}
		_, _, err := testSettings(t, "wg7", kv)
		if err == nil || !strings.Contains(err.Error(), k[len("WGHOOKS_"):]) {
			t.Errorf("%s=%q: error %v, want one naming the variable", k, v, err)
		}
	}
}

func TestDaemonStoreExplicit(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "peers.db")
	d, _, err := testSettings(t, "wg7", map[string]string{sqlstore.EnvPath: path})
	if err != nil || d.store == nil || !d.store.explicit {
		t.Fatalf("explicit store: %v, %+v", err, d.store)
	}
	stop, err := d.startPeerStore(nil, "wg7", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	jitStore := d.store
	s, _ := jitStore.open()
	key := hooks.PublicKey{4}
	if err := s.Put(context.Background(), sqlstore.Peer{PeerConfig: hooks.PeerConfig{PublicKey: key}}); err != nil {
		t.Fatal(err)
	}
	if _, err := jitStore.LookupPeer(context.Background(), key); err != nil {
		t.Fatal(err)
	}
}
