package httpprovider

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/wghooks/wghooks/hooks"
)

func testKey(b byte) hooks.PublicKey {
	var k hooks.PublicKey
	for i := range k {
		k[i] = b
	}
	k[0] = 0xfb // base64 of this byte uses '+' or '/', exercising URL-safe keys
	return k
}

func TestLookupThroughHandler(t *testing.T) {
	want := hooks.PeerConfig{
		AllowedIPs:          []netip.Prefix{netip.MustParsePrefix("198.18.0.2/32")},
		PresharedKey:        [32]byte{7},
		PersistentKeepalive: 25 * time.Second,
		Endpoint:            netip.MustParseAddrPort("198.18.1.1:51820"),
	}
	known := testKey(1)
	src := hooks.ProviderFunc(func(_ context.Context, k hooks.PublicKey) (hooks.PeerConfig, error) {
		if k == known {
			return want, nil
		}
		return hooks.PeerConfig{}, hooks.ErrUnknownPeer
	})
	srv := httptest.NewServer(Handler(src, "s3cret"))
	defer srv.Close()

	for _, url := range []string{srv.URL + "/peers", srv.URL + "/peers/", srv.URL + "/peers/{key}", srv.URL + "/peers/{hex}"} {
		p, err := New(Config{URL: url, Token: "s3cret"})
		if err != nil {
			t.Fatal(err)
		}
		got, err := p.LookupPeer(context.Background(), known)
		if err != nil {
			t.Fatalf("%s: %v", url, err)
		}
		if !got.Equal(want) || got.PublicKey != known {
			t.Fatalf("%s: got %+v, want %+v", url, got, want)
		}
		if _, err := p.LookupPeer(context.Background(), testKey(2)); !errors.Is(err, hooks.ErrUnknownPeer) {
			t.Fatalf("%s: unknown key: %v, want ErrUnknownPeer", url, err)
		}
	}

	p, _ := New(Config{URL: srv.URL + "/peers", Token: "wrong"})
	if _, err := p.LookupPeer(context.Background(), known); err == nil || errors.Is(err, hooks.ErrUnknownPeer) {
		t.Fatalf("wrong token: %v, want an error that is not ErrUnknownPeer", err)
	}
}

func TestLookupFailures(t *testing.T) {
	hang := make(chan struct{})
	defer close(hang)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case strings.HasPrefix(r.URL.Path, "/500/"):
			http.Error(w, "boom", 500)
		case strings.HasPrefix(r.URL.Path, "/gone/"):
			w.WriteHeader(http.StatusGone)
		case strings.HasPrefix(r.URL.Path, "/garbage/"):
			w.Write([]byte("{not json"))
		case strings.HasPrefix(r.URL.Path, "/badip/"):
			w.Write([]byte(`{"allowed_ips":["300.1.1.1/32"]}`))
		case strings.HasPrefix(r.URL.Path, "/otherkey/"):
			w.Write([]byte(`{"public_key":"AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=","allowed_ips":[]}`))
		case strings.HasPrefix(r.URL.Path, "/huge/"):
			w.Write([]byte(`{"allowed_ips":["` + strings.Repeat("x", maxBody) + `"]}`))
		case strings.HasPrefix(r.URL.Path, "/hang/"):
			select {
			case <-hang:
			case <-r.Context().Done():
			}
		}
	}))
	defer srv.Close()
	for _, tc := range []struct {
		path    string
		unknown bool
	}{
		{"/500", false}, {"/gone", true}, {"/garbage", false}, {"/badip", false},
		{"/otherkey", false}, {"/huge", false}, {"/hang", false},
	} {
		p, err := New(Config{URL: srv.URL + tc.path, Timeout: 300 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		_, err = p.LookupPeer(context.Background(), testKey(3))
		if err == nil {
			t.Errorf("%s: no error", tc.path)
			continue
		}
		if errors.Is(err, hooks.ErrUnknownPeer) != tc.unknown {
			t.Errorf("%s: err %v, unknown=%v", tc.path, err, tc.unknown)
		}
	}
}

func TestNewRefusesBadURL(t *testing.T) {
	for _, u := range []string{"", "ftp://x", "localhost:80"} {
		if _, err := New(Config{URL: u}); err == nil {
			t.Errorf("New(%q) succeeded", u)
		}
	}
}

// TestNewRefusesPlaintextToRemote: http:// to a host that is not loopback
// is refused unless AllowPlaintext; no traffic is sent.
func TestNewRefusesPlaintextToRemote(t *testing.T) {
	for _, c := range []Config{
		{URL: "http://198.18.0.1/peers"},
		{URL: "http://198.18.0.1:8080/peers/{key}"},
		{URL: "https://198.18.0.1/peers", AddrURL: "http://198.18.0.1/peers?addr={addr}"},
		{URL: "http://cp.example/peers"},
	} {
		if _, err := New(c); err == nil {
			t.Errorf("New(%+v) succeeded, want plaintext refused", c)
		} else if !strings.Contains(err.Error(), "plaintext") {
			t.Errorf("New(%+v): %v, want it to say plaintext", c, err)
		}
		c.AllowPlaintext = true
		if _, err := New(c); err != nil {
			t.Errorf("New(%+v) with AllowPlaintext: %v", c, err)
		}
	}
	for _, u := range []string{"http://127.0.0.1:1/peers", "http://[::1]:1/peers", "http://localhost:1/peers", "https://198.18.0.1/peers"} {
		if _, err := New(Config{URL: u}); err != nil {
			t.Errorf("New(%q): %v", u, err)
		}
	}
}
