package httpprovider

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/wghooks/wghooks/hooks"
)

// TestRedirectToOtherOriginRefused: an https:// control plane redirecting
// to http:// on the same host (or to another port) fails the lookup, and
// the token is never sent to the other origin.
func TestRedirectToOtherOriginRefused(t *testing.T) {
	const token = "s3cret-token"
	var leaked atomic.Int32
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.Header.Get("Authorization"), token) {
			leaked.Add(1)
		}
		w.Write([]byte(`{"allowed_ips":["198.18.0.2/32"]}`))
	}))
	defer plain.Close()
	tlsSrv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, plain.URL+r.URL.Path, http.StatusFound)
	}))
	defer tlsSrv.Close()

	p, err := New(Config{URL: tlsSrv.URL + "/peers", Token: token, Client: tlsSrv.Client()})
	if err != nil {
		t.Fatal(err)
	}
	_, err = p.LookupPeer(context.Background(), testKey(1))
	if err == nil || errors.Is(err, hooks.ErrUnknownPeer) {
		t.Fatalf("lookup redirected from https to http: %v, want an error", err)
	}
	if !strings.Contains(err.Error(), "redirect") {
		t.Errorf("error %q does not say the redirect was refused", err)
	}
	if n := leaked.Load(); n != 0 {
		t.Errorf("the token reached the plaintext server %d times", n)
	}
}

// TestRedirectSameOriginFollowed: a redirect within the same scheme, host
// and port is still followed.
func TestRedirectSameOriginFollowed(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/old/") {
			http.Redirect(w, r, "/new/"+strings.TrimPrefix(r.URL.Path, "/old/"), http.StatusMovedPermanently)
			return
		}
		w.Write([]byte(`{"allowed_ips":["198.18.0.2/32"]}`))
	}))
	defer srv.Close()
	p, err := New(Config{URL: srv.URL + "/old"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.LookupPeer(context.Background(), testKey(1)); err != nil {
		t.Fatalf("same-origin redirect: %v", err)
	}
}

func TestRedirectOtherPortRefused(t *testing.T) {
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`{"allowed_ips":["198.18.0.2/32"]}`))
	}))
	defer other.Close()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL+r.URL.Path, http.StatusFound)
	}))
	defer srv.Close()
	p, err := New(Config{URL: srv.URL + "/peers"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.LookupPeer(context.Background(), testKey(1)); err == nil {
		t.Fatal("redirect to another port followed")
	}
}
