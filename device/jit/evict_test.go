package jit

import (
	"context"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/wghooks/wghooks/device/feature"
	"github.com/wghooks/wghooks/device/feature/featuretest"
	"github.com/wghooks/wghooks/hooks"
	"github.com/wghooks/wghooks/uapi"
)

// configuringHost is a featuretest.Host whose Configure does what the
// core's does for the feature: the peers it configures exist afterwards,
// and the feature's Configured sees the change.
type configuringHost struct {
	*featuretest.Host
	t *testing.T
	j *JIT
}

func (h *configuringHost) Configure(origin string, c feature.Config) error {
	h.Host.Configure(origin, c)
	set, err := uapi.ParseSet(strings.Split(strings.TrimSuffix(c.UAPI(), "\n"), "\n"), nil)
	if err != nil {
		h.t.Errorf("Configure(%q): %v", origin, err)
		return err
	}
	for _, p := range c.Peers {
		if !p.Remove {
			h.AddPeer(p.PublicKey)
		}
	}
	h.j.Configured(feature.Change{Set: set, Origin: origin})
	return nil
}

// TestRevalidationKeepsStaticRoutes: a changed answer on revalidation
// follows the rules of a first install. A static peer owns
// 198.18.7.0/24; the provider first answers a just-in-time peer with
// 198.18.1.1/32, then with 198.18.7.7/32: the change is refused (a
// failed lookup, counted as a provider error), the static peer keeps its
// route, and the just-in-time peer is kept as it was.
func TestRevalidationKeepsStaticRoutes(t *testing.T) {
	ft, _ := featuretest.New(t)
	h := &configuringHost{Host: ft, t: t}
	first, taken := netip.MustParsePrefix("198.18.1.1/32"), netip.MustParsePrefix("198.18.7.7/32")
	var asked atomic.Int32
	prov := hooks.ProviderFunc(func(context.Context, hooks.PublicKey) (hooks.PeerConfig, error) {
		if asked.Add(1) == 1 {
			return hooks.PeerConfig{AllowedIPs: []netip.Prefix{first}}, nil
		}
		return hooks.PeerConfig{AllowedIPs: []netip.Prefix{taken}}, nil
	})
	var evMu sync.Mutex
	var events []hooks.PeerEvent
	j := newJIT(h, Config{Provider: prov, OnPeerEvent: func(ev hooks.PeerEvent) {
		evMu.Lock()
		defer evMu.Unlock()
		events = append(events, ev)
	}})
	h.j = j
	t.Cleanup(j.Close)

	static, k := feature.Key{1}, feature.Key{2}
	if err := h.Configure("", feature.Config{Peers: []feature.PeerConfig{{PublicKey: static, AllowedIPs: []netip.Prefix{netip.MustParsePrefix("198.18.7.0/24")}}}}); err != nil {
		t.Fatal(err)
	}
	j.provision(k, netip.MustParseAddrPort("127.0.0.1:1"))
	if !j.isJIT(k) {
		t.Fatalf("first answer not installed; log %q", h.Logs())
	}
	errorsBefore := j.c.ProviderErrors.Load()

	j.revalidateOne(k)
	for _, c := range h.Configs {
		if strings.Contains(c.UAPI(), "allowed_ip="+taken.String()) {
			t.Fatalf("revalidation handed the static peer's %v to the just-in-time peer:\n%s", taken, c.UAPI())
		}
	}
	if err := j.static.check(k, []netip.Prefix{taken}); err == nil {
		t.Fatal("the static peer lost its route")
	}
	j.mu.Lock()
	p := j.peers[k]
	kept := p != nil && len(p.cfg.AllowedIPs) == 1 && p.cfg.AllowedIPs[0] == first
	j.mu.Unlock()
	if !kept {
		t.Fatal("the just-in-time peer was not kept as it was")
	}
	if got := j.c.ProviderErrors.Load() - errorsBefore; got != 1 {
		t.Errorf("the refused change counted %d provider errors, want 1", got)
	}
	evMu.Lock()
	last := events[len(events)-1]
	evMu.Unlock()
	if last.Kind != hooks.PeerLookupFailed || last.Key != hooks.PublicKey(k) || last.Err == nil || !strings.Contains(last.Err.Error(), "overlaps") {
		t.Errorf("last event %+v, want a failed lookup of the peer saying what overlaps", last)
	}
	if !h.Logged("provider's answer refused") {
		t.Errorf("no log line says the answer was refused: %q", h.Logs())
	}
}

// TestAnswerForStaticKeyRefused: an answer naming the key of a static
// peer is refused on every path, and leaves the peer static.
func TestAnswerForStaticKeyRefused(t *testing.T) {
	ft, _ := featuretest.New(t)
	h := &configuringHost{Host: ft, t: t}
	j := newJIT(h, Config{})
	h.j = j
	t.Cleanup(j.Close)
	static := feature.Key{1}
	if err := h.Configure("", feature.Config{Peers: []feature.PeerConfig{{PublicKey: static, AllowedIPs: []netip.Prefix{netip.MustParsePrefix("198.18.7.0/24")}}}}); err != nil {
		t.Fatal(err)
	}
	n := len(h.Configs)
	if err := j.applyAnswer(static, hooks.PeerConfig{AllowedIPs: []netip.Prefix{netip.MustParsePrefix("198.18.1.1/32")}}); err == nil {
		t.Fatal("an answer for a static peer's key was applied")
	}
	if len(h.Configs) != n || j.isJIT(static) {
		t.Fatalf("the refused answer configured the static peer (%d changes) or marked it (%v)", len(h.Configs)-n, j.isJIT(static))
	}
}
