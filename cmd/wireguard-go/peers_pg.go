package main

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/wghooks/wghooks/hooks"
	"github.com/wghooks/wghooks/hooks/pgstore"
)

// daemonPG is the PostgreSQL store as the device's provider. The device
// is built before the store opens (startPeerStore, with the daemon's
// log), so this stands in for it: a call before then waits for the open,
// up to its context (then fails: nothing is installed), and so does the
// device's watch.
type daemonPG struct {
	url    string
	opened chan struct{} // closed once open was tried
	s      *pgstore.Store
	err    error
}

var (
	_ hooks.Provider       = (*daemonPG)(nil)
	_ hooks.AddrProvider   = (*daemonPG)(nil)
	_ hooks.BatchProvider  = (*daemonPG)(nil)
	_ hooks.ChangeNotifier = (*daemonPG)(nil)
	_ hooks.StateStore     = (*daemonPG)(nil)
)

var errPGNotOpen = errors.New("peer store not open yet")

// store waits for the open, up to ctx, and returns the store.
func (p *daemonPG) store(ctx context.Context) (*pgstore.Store, error) {
	select {
	case <-p.opened:
	case <-ctx.Done():
		return nil, fmt.Errorf("%w: %w", errPGNotOpen, ctx.Err())
	}
	if p.s == nil {
		return nil, p.err
	}
	return p.s, nil
}

func newDaemonPG(url string) *daemonPG { return &daemonPG{url: url, opened: make(chan struct{})} }

// open opens the store: a database without the schema stops the start;
// one that does not answer does not (the gateway refuses unknown keys
// until it does).
func (p *daemonPG) open(logf hooks.Logf) (func(), error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	p.s, p.err = pgstore.Open(ctx, pgstore.Config{URL: p.url, Logf: logf})
	close(p.opened)
	if p.err != nil {
		return nil, p.err
	}
	return p.s.Close, nil
}

func (p *daemonPG) LookupPeer(ctx context.Context, key hooks.PublicKey) (hooks.PeerConfig, error) {
	s, err := p.store(ctx)
	if err != nil {
		return hooks.PeerConfig{}, err
	}
	return s.LookupPeer(ctx, key)
}

func (p *daemonPG) LookupAddr(ctx context.Context, addr netip.Addr) (hooks.PeerConfig, error) {
	s, err := p.store(ctx)
	if err != nil {
		return hooks.PeerConfig{}, err
	}
	return s.LookupAddr(ctx, addr)
}

func (p *daemonPG) LookupPeers(ctx context.Context, keys []hooks.PublicKey) ([]hooks.PeerResult, error) {
	s, err := p.store(ctx)
	if err != nil {
		return nil, err
	}
	return s.LookupPeers(ctx, keys)
}

func (p *daemonPG) SavePeerState(ctx context.Context, states []hooks.PeerState) error {
	s, err := p.store(ctx)
	if err != nil {
		return err
	}
	return s.SavePeerState(ctx, states)
}

func (p *daemonPG) LoadPeerState(ctx context.Context, gateway hooks.PublicKey, since time.Time, limit int) ([]hooks.PeerState, error) {
	s, err := p.store(ctx)
	if err != nil {
		return nil, err
	}
	return s.LoadPeerState(ctx, gateway, since, limit)
}

// WatchChanges waits for the store to open, then watches it.
func (p *daemonPG) WatchChanges(ctx context.Context, changed func([]hooks.PublicKey), resync func()) error {
	s, err := p.store(ctx)
	if err != nil {
		return err
	}
	return s.WatchChanges(ctx, changed, resync)
}
