package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"wghooks/device"
	"wghooks/hooks"
	"wghooks/hooks/httpprovider"
	"wghooks/hooks/sqlstore"
)

// Settings for just-in-time peers:
//
//	WGHOOKS_PEER_DB=PATH          the SQLite peer store (default
//	                              /var/lib/wghooks/IFACE.db, used once it
//	                              exists: `wghooks peers add` creates it);
//	                              "off" turns just-in-time peers off
//	WGHOOKS_PEER_URL=URL          ask a control plane over HTTP instead
//	                              (GET URL/<key>, see hooks/httpprovider)
//	WGHOOKS_PEER_ADDR_URL=URL     its by-address lookup, with {addr}
//	                              (for WGHOOKS_JIT_OUTBOUND)
//	WGHOOKS_PEER_TOKEN=TOKEN      its bearer token, or
//	WGHOOKS_PEER_TOKEN_FILE=PATH  read from a file
//	WGHOOKS_JIT_IDLE=10m          evict peers idle this long ("off": never)
//	WGHOOKS_JIT_MAX_PEERS=16384   cap on installed just-in-time peers
//	WGHOOKS_JIT_REVALIDATE=5m     re-ask the provider at this interval
//	                              ("off": never)
//	WGHOOKS_JIT_NEGATIVE_TTL=1m   refuse an unknown key this long
//	WGHOOKS_JIT_LOOKUP_TIMEOUT=3s bound on one lookup
//	WGHOOKS_JIT_RESTORE_DEADLINE=2m
//	                              bound on reinstalling, after a restart,
//	                              the just-in-time peers of the state file
//	WGHOOKS_JIT_OUTBOUND=off      "on": a packet to the address of a peer
//	                              not installed (evicted, or never seen)
//	                              installs it from the provider, so the
//	                              gateway can reach a client first
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

// jitStore is the daemon's SQLite store, when it is the provider.
var jitStore *daemonStore

func init() {
	optionParsers = append(optionParsers, parseJITOptions)
	services = append(services, startJITStore)
}

func parseJITOptions(cfg *device.Config, getenv func(string) string) error {
	if err := parseJITDurations(&cfg.JIT, getenv); err != nil {
		return err
	}
	if v := getenv(envJITMaxPeers); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			return fmt.Errorf("failed to parse %s=%q: want a positive number", envJITMaxPeers, v)
		}
		cfg.JIT.MaxPeers = n
	}
	switch v := getenv(envJITOutbound); v {
	case "", "off":
	case "on":
		cfg.JIT.Outbound = true
	default:
		return fmt.Errorf("failed to parse %s=%q: want on or off", envJITOutbound, v)
	}
	if u := getenv(envPeerURL); u != "" {
		token := getenv(envPeerToken)
		if f := getenv(envPeerTokenFile); f != "" {
			b, err := os.ReadFile(f)
			if err != nil {
				return fmt.Errorf("failed to read %s=%q: %w", envPeerTokenFile, f, err)
			}
			token = strings.TrimSpace(string(b))
		}
		p, err := httpprovider.New(httpprovider.Config{URL: u, Token: token, AddrURL: getenv(envPeerAddrURL)})
		if err != nil {
			return fmt.Errorf("failed to parse %s: %w", envPeerURL, err)
		}
		cfg.JIT.Provider = p
		return nil
	}
	path := getenv(sqlstore.EnvPath)
	if path == "off" {
		return nil
	}
	explicit := path != ""
	if !explicit {
		path = sqlstore.PathFor(cfg.Name, getenv)
	}
	jitStore = &daemonStore{path: path, explicit: explicit}
	cfg.JIT.Provider = jitStore
	return nil
}

func parseJITDurations(c *device.JITConfig, getenv func(string) string) error {
	for _, d := range []struct {
		env    string
		to     *time.Duration
		canOff bool
	}{
		{envJITIdle, &c.IdleTimeout, true},
		{envJITRevalidate, &c.RevalidateInterval, true},
		{envJITNegativeTTL, &c.NegativeTTL, false},
		{envJITLookupTimeout, &c.LookupTimeout, false},
		{envJITRestoreDeadline, &c.RestoreDeadline, false},
	} {
		v := getenv(d.env)
		switch {
		case v == "":
			continue
		case v == "off" && d.canOff:
			*d.to = -1
			continue
		}
		dur, err := time.ParseDuration(v)
		if err != nil || dur <= 0 {
			want := "a positive duration such as 30s or 10m"
			if d.canOff {
				want += ", or off"
			}
			return fmt.Errorf("failed to parse %s=%q: want %s", d.env, v, want)
		}
		*d.to = dur
	}
	return nil
}

// startJITStore opens an explicitly configured store at start, so a bad
// path fails the daemon at once; the default path is opened on first use,
// once the file exists.
func startJITStore(_ *device.Device, _ string, _ hooks.Logf) (func(), error) {
	if jitStore == nil {
		return nil, nil
	}
	if jitStore.explicit {
		if dir := filepath.Dir(jitStore.path); dir != "" {
			if err := os.MkdirAll(dir, 0o700); err != nil {
				return nil, fmt.Errorf("failed to create peer store directory %q: %w", dir, err)
			}
		}
		if _, err := jitStore.open(); err != nil {
			return nil, err
		}
	}
	return jitStore.close, nil
}

// daemonStore is the SQLite store, opened when first needed: a daemon
// whose default store does not exist yet answers "unknown" until
// `wghooks peers add` creates it.
type daemonStore struct {
	path     string
	explicit bool

	mu sync.Mutex
	s  *sqlstore.Store
}

func (ds *daemonStore) open() (*sqlstore.Store, error) {
	ds.mu.Lock()
	defer ds.mu.Unlock()
	if ds.s != nil {
		return ds.s, nil
	}
	if !ds.explicit {
		if _, err := os.Stat(ds.path); errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
	}
	s, err := sqlstore.Open(ds.path)
	if err != nil {
		return nil, err
	}
	ds.s = s
	return s, nil
}

func (ds *daemonStore) close() {
	ds.mu.Lock()
	defer ds.mu.Unlock()
	if ds.s != nil {
		ds.s.Close()
		ds.s = nil
	}
}

// LookupPeer implements hooks.Provider.
func (ds *daemonStore) LookupPeer(ctx context.Context, key hooks.PublicKey) (hooks.PeerConfig, error) {
	s, err := ds.open()
	if err != nil {
		return hooks.PeerConfig{}, err
	}
	if s == nil {
		return hooks.PeerConfig{}, hooks.ErrUnknownPeer
	}
	return s.LookupPeer(ctx, key)
}

// LookupAddr implements hooks.AddrProvider.
func (ds *daemonStore) LookupAddr(ctx context.Context, addr netip.Addr) (hooks.PeerConfig, error) {
	s, err := ds.open()
	if err != nil {
		return hooks.PeerConfig{}, err
	}
	if s == nil {
		return hooks.PeerConfig{}, hooks.ErrUnknownPeer
	}
	return s.LookupAddr(ctx, addr)
}
