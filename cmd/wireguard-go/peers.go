package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/wghooks/wghooks/cmd/wireguard-go/internal/settings"
	"github.com/wghooks/wghooks/device"
	"github.com/wghooks/wghooks/hooks"
	"github.com/wghooks/wghooks/hooks/httpprovider"
	"github.com/wghooks/wghooks/hooks/pgstore"
	"github.com/wghooks/wghooks/hooks/sqlstore"
)

// buildProvider chooses the just-in-time peer provider from the settings:
// the HTTP control plane when WGHOOKS_PEER_URL is set, else the store
// WGHOOKS_PEER_DB names (a postgres:// URL: the fleet's PostgreSQL; else
// a SQLite file) unless it is off.
func (d *daemon) buildProvider() error {
	if d.peerURL != "" {
		token := d.peerToken
		if d.peerTokenFile != "" {
			b, err := os.ReadFile(d.peerTokenFile)
			if err != nil {
				return fmt.Errorf("failed to read WGHOOKS_PEER_TOKEN_FILE=%q: %w", d.peerTokenFile, err)
			}
			token = strings.TrimSpace(string(b))
		}
		p, err := httpprovider.New(httpprovider.Config{URL: d.peerURL, Token: token, AddrURL: d.peerAddrURL,
			AllowPlaintext: d.peerAllowPlaintext})
		if err != nil {
			return fmt.Errorf("failed to apply WGHOOKS_PEER_URL: %w", err) // the provider's error names the URL, redacted
		}
		d.cfg.JIT.Provider = p
		return nil
	}
	if d.peerDB.Off || !d.peerDB.IsSet() {
		return nil
	}
	if pgstore.IsURL(d.peerDB.Text) {
		d.pg = newDaemonPG(d.peerDB.Text)
		d.cfg.JIT.Provider = d.pg
		return nil
	}
	d.store = &daemonStore{path: d.peerDB.Text, explicit: d.peerDB.Source != settings.FromDefault}
	d.cfg.JIT.Provider = d.store
	return nil
}

// startPeerStore opens an explicitly configured store at start, so a bad
// path fails the daemon at once; the default path is opened on first use,
// once the file exists.
func (d *daemon) startPeerStore(_ *device.Device, _ string, logf hooks.Logf) (func(), error) {
	if d.pg != nil {
		return d.pg.open(logf)
	}
	ds := d.store
	if ds == nil {
		return nil, nil
	}
	if ds.explicit {
		if dir := filepath.Dir(ds.path); dir != "" {
			if err := os.MkdirAll(dir, 0o700); err != nil {
				return nil, fmt.Errorf("failed to create peer store directory %q: %w", dir, err)
			}
		}
		if _, err := ds.open(); err != nil {
			return nil, err
		}
	}
	return ds.close, nil
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

// SavePeerState implements hooks.StateStore: the fleet's learned state
// goes to the store beside the peers; nothing to save into before the
// default store exists.
func (ds *daemonStore) SavePeerState(ctx context.Context, states []hooks.PeerState) error {
	s, err := ds.open()
	if err != nil || s == nil {
		return err
	}
	return s.SavePeerState(ctx, states)
}

// LoadPeerState implements hooks.StateStore.
func (ds *daemonStore) LoadPeerState(ctx context.Context, gateway hooks.PublicKey, since time.Time, limit int) ([]hooks.PeerState, error) {
	s, err := ds.open()
	if err != nil || s == nil {
		return nil, err
	}
	return s.LoadPeerState(ctx, gateway, since, limit)
}

var _ hooks.StateStore = (*daemonStore)(nil)
