package httpprovider

import (
	"context"
	"errors"
	"net/http/httptest"
	"net/netip"
	"testing"

	"github.com/wghooks/wghooks/hooks"
)

func TestLookupAddrThroughHandler(t *testing.T) {
	known := testKey(1)
	want := hooks.PeerConfig{
		PublicKey:  known,
		AllowedIPs: []netip.Prefix{netip.MustParsePrefix("198.18.0.2/32"), netip.MustParsePrefix("fd00::2/128")},
		Endpoint:   netip.MustParseAddrPort("198.18.1.1:51820"),
	}
	src := struct {
		hooks.ProviderFunc
		hooks.AddrProviderFunc
	}{
		func(context.Context, hooks.PublicKey) (hooks.PeerConfig, error) {
			return hooks.PeerConfig{}, hooks.ErrUnknownPeer
		},
		func(_ context.Context, a netip.Addr) (hooks.PeerConfig, error) {
			for _, p := range want.AllowedIPs {
				if p.Contains(a) {
					return want, nil
				}
			}
			return hooks.PeerConfig{}, hooks.ErrUnknownPeer
		},
	}
	srv := httptest.NewServer(Handler(src, "s3cret"))
	defer srv.Close()

	p, err := New(Config{URL: srv.URL + "/peers", AddrURL: srv.URL + "/peers?addr={addr}", Token: "s3cret"})
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range []string{"198.18.0.2", "fd00::2"} {
		got, err := p.LookupAddr(context.Background(), netip.MustParseAddr(a))
		if err != nil || got.PublicKey != known || !got.Equal(want) {
			t.Fatalf("LookupAddr(%s) = %+v, %v; want %+v", a, got, err, want)
		}
	}
	if _, err := p.LookupAddr(context.Background(), netip.MustParseAddr("198.18.0.3")); !errors.Is(err, hooks.ErrUnknownPeer) {
		t.Fatalf("unknown address: %v, want ErrUnknownPeer", err)
	}

	// Without AddrURL, or against a control plane that cannot: unsupported.
	plain, _ := New(Config{URL: srv.URL + "/peers", Token: "s3cret"})
	if _, err := plain.LookupAddr(context.Background(), netip.MustParseAddr("198.18.0.2")); !errors.Is(err, errors.ErrUnsupported) {
		t.Fatalf("no AddrURL: %v, want errors.ErrUnsupported", err)
	}
	keyOnly := httptest.NewServer(Handler(src.ProviderFunc, "s3cret"))
	defer keyOnly.Close()
	p2, _ := New(Config{URL: keyOnly.URL, AddrURL: keyOnly.URL + "/?addr={addr}", Token: "s3cret"})
	if _, err := p2.LookupAddr(context.Background(), netip.MustParseAddr("198.18.0.2")); !errors.Is(err, errors.ErrUnsupported) {
		t.Fatalf("key-only control plane: %v, want errors.ErrUnsupported", err)
	}

	if _, err := New(Config{URL: srv.URL, AddrURL: srv.URL + "/by-addr"}); err == nil {
		t.Fatal("New accepted an address URL without {addr}")
	}
}

func TestLookupAddrNeedsAKey(t *testing.T) {
	src := struct {
		hooks.ProviderFunc
		hooks.AddrProviderFunc
	}{nil, func(context.Context, netip.Addr) (hooks.PeerConfig, error) {
		return hooks.PeerConfig{AllowedIPs: []netip.Prefix{netip.MustParsePrefix("198.18.0.2/32")}}, nil
	}}
	srv := httptest.NewServer(Handler(src, ""))
	defer srv.Close()
	p, _ := New(Config{URL: srv.URL, AddrURL: srv.URL + "/?addr={addr}"})
	// FromConfig writes the zero key, which names no peer.
	if _, err := p.LookupAddr(context.Background(), netip.MustParseAddr("198.18.0.2")); err == nil {
		t.Fatal("an answer naming no key was accepted")
	}
}
