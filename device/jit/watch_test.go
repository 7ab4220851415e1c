package jit

import (
	"context"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/wghooks/wghooks/device/feature"
	"github.com/wghooks/wghooks/device/feature/featuretest"
	"github.com/wghooks/wghooks/hooks"
)

// notifyingProvider answers from a map and hands the device's changed
// and resync callbacks to the test.
type notifyingProvider struct {
	mu      sync.Mutex
	peers   map[hooks.PublicKey]hooks.PeerConfig
	changed func([]hooks.PublicKey)
	resync  func()
	ready   chan struct{}
}

func (p *notifyingProvider) LookupPeer(_ context.Context, k hooks.PublicKey) (hooks.PeerConfig, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	cfg, ok := p.peers[k]
	if !ok {
		return cfg, hooks.ErrUnknownPeer
	}
	return cfg, nil
}

func (p *notifyingProvider) WatchChanges(ctx context.Context, changed func([]hooks.PublicKey), resync func()) error {
	p.mu.Lock()
	p.changed, p.resync = changed, resync
	p.mu.Unlock()
	close(p.ready)
	<-ctx.Done()
	return ctx.Err()
}

func (p *notifyingProvider) set(k feature.Key, pfx string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if pfx == "" {
		delete(p.peers, hooks.PublicKey(k))
		return
	}
	p.peers[hooks.PublicKey(k)] = hooks.PeerConfig{AllowedIPs: []netip.Prefix{netip.MustParsePrefix(pfx)}}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}

// TestWatchedChanges: a key the provider says changed is revalidated at
// once: removed, it is cut; changed, applied; a change taking a static
// peer's addresses is refused and the peer kept. A key the device does
// not hold only loses its cached "unknown"; a static peer named in a
// change is left alone; resync revalidates every just-in-time peer.
func TestWatchedChanges(t *testing.T) {
	ft, _ := featuretest.New(t)
	h := &configuringHost{Host: ft, t: t}
	prov := &notifyingProvider{peers: map[hooks.PublicKey]hooks.PeerConfig{}, ready: make(chan struct{})}
	j := newJIT(h, Config{Provider: prov})
	h.j = j
	t.Cleanup(j.Close)
	j.startWatch()
	<-prov.ready

	static, gone, moved, grabby, newcomer := feature.Key{1}, feature.Key{2}, feature.Key{3}, feature.Key{4}, feature.Key{5}
	if err := h.Configure("", feature.Config{Peers: []feature.PeerConfig{{PublicKey: static, AllowedIPs: []netip.Prefix{netip.MustParsePrefix("198.18.7.0/24")}}}}); err != nil {
		t.Fatal(err)
	}
	prov.set(gone, "198.18.1.1/32")
	prov.set(moved, "198.18.1.2/32")
	prov.set(grabby, "198.18.1.3/32")
	for _, k := range []feature.Key{gone, moved, grabby} {
		j.provision(k, netip.MustParseAddrPort("127.0.0.1:1"))
		if !j.isJIT(k) {
			t.Fatalf("%v not installed: %q", k, h.Logs())
		}
	}
	j.setNegative(newcomer, time.Hour)

	prov.set(gone, "")
	prov.set(moved, "198.18.1.22/32")
	prov.set(grabby, "198.18.7.7/32")
	prov.set(newcomer, "198.18.1.5/32")
	prov.set(static, "198.18.9.9/32")
	prov.changed([]hooks.PublicKey{hooks.PublicKey(gone), hooks.PublicKey(moved), hooks.PublicKey(grabby), hooks.PublicKey(newcomer), hooks.PublicKey(static)})

	waitFor(t, "the removed key cut", func() bool { return !j.isJIT(gone) })
	waitFor(t, "the changed key applied", func() bool {
		j.mu.Lock()
		defer j.mu.Unlock()
		p := j.peers[moved]
		return p != nil && p.cfg.AllowedIPs[0].String() == "198.18.1.22/32"
	})
	waitFor(t, "the newcomer's unknown forgotten", func() bool {
		j.mu.Lock()
		defer j.mu.Unlock()
		_, neg := j.negative[newcomer]
		return !neg
	})
	waitFor(t, "the grabbing change refused", func() bool { return h.Logged("provider's answer refused") })
	j.mu.Lock()
	p := j.peers[grabby]
	kept := p != nil && p.cfg.AllowedIPs[0].String() == "198.18.1.3/32"
	_, staticMarked := j.peers[static]
	j.mu.Unlock()
	if !kept || staticMarked || j.static.check(grabby, []netip.Prefix{netip.MustParsePrefix("198.18.7.7/32")}) == nil {
		t.Fatalf("a change took a static peer's addresses or touched the static peer (kept %v, static marked %v)", kept, staticMarked)
	}
	for _, c := range h.Configs[1:] {
		for _, pc := range c.Peers {
			if pc.PublicKey == static {
				t.Fatalf("a change named the static peer reconfigured it:\n%s", c.UAPI())
			}
		}
	}

	// resync: every just-in-time peer asked again.
	prov.set(moved, "")
	prov.resync()
	waitFor(t, "resync cut a key removed meanwhile", func() bool { return !j.isJIT(moved) })
	if !j.isJIT(grabby) {
		t.Fatal("resync cut a key the provider still knows")
	}
}
