package httpprovider

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// TestErrorsRedactSecrets: no error of the package carries the token or a
// URL's password, whatever failed.
func TestErrorsRedactSecrets(t *testing.T) {
	const (
		token = "tok-Zq81s3cret"
		pw    = "hunter2-pw"
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case strings.Contains(r.URL.Path, "/500"):
			http.Error(w, "boom", 500)
		case strings.Contains(r.URL.Path, "/garbage"):
			w.Write([]byte("{not json"))
		case strings.Contains(r.URL.Path, "/away"):
			http.Redirect(w, r, "https://127.0.0.1:1/", http.StatusFound)
		default:
			w.Write([]byte(`{"public_key":"AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=","allowed_ips":[]}`))
		}
	}))
	defer srv.Close()
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()
	withPW := func(base string) string { return strings.Replace(base, "://", "://user:"+pw+"@", 1) }

	check := func(what string, err error) {
		t.Helper()
		if err == nil {
			t.Errorf("%s: no error", what)
			return
		}
		if msg := err.Error(); strings.Contains(msg, token) || strings.Contains(msg, pw) {
			t.Errorf("%s: error leaks a secret: %s", what, msg)
		}
	}
	// The last path also carries the token, as an operator may put it in
	// the URL too.
	for _, path := range []string{"/500", "/garbage", "/away", "/otherkey", "/500/" + token} {
		p, err := New(Config{URL: withPW(srv.URL) + path, Token: token, AddrURL: withPW(srv.URL) + path + "?addr={addr}"})
		if err != nil {
			t.Fatal(err)
		}
		_, err = p.LookupPeer(context.Background(), testKey(3))
		check("lookup "+path, err)
		if path != "/otherkey" { // names a peer: a valid address answer
			_, err = p.LookupAddr(context.Background(), netip.MustParseAddr("198.18.0.2"))
			check("address lookup "+path, err)
		}
	}
	p, err := New(Config{URL: withPW(closed.URL) + "/peers", Token: token, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	_, err = p.LookupPeer(context.Background(), testKey(3))
	check("connection refused", err)

	for _, c := range []Config{
		{URL: "ftp://user:" + pw + "@198.18.0.1/"},
		{URL: "http://user:" + pw + "@198.18.0.1/peers"},
		{URL: "https://198.18.0.1/peers", AddrURL: "https://user:" + pw + "@198.18.0.1/peers"},
		{URL: "https://user:" + pw + "@198.18.0.1/peers", AddrURL: "http://user:" + pw + "@198.18.0.1/?addr={addr}"},
	} {
		_, err := New(c)
		check("New", err)
	}
}
