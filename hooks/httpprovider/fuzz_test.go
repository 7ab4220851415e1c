package httpprovider

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/wghooks/wghooks/hooks"
)

// cannedTransport answers every request with one status and body,
// without a network.
type cannedTransport struct {
	status int
	body   []byte
}

func (c cannedTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	return &http.Response{
		StatusCode: c.status,
		Status:     http.StatusText(c.status),
		Body:       io.NopCloser(bytes.NewReader(c.body)),
		Header:     http.Header{},
		Request:    r,
	}, nil
}

// FuzzLookupAnswer feeds the control plane's answer (status and body) to
// LookupPeer. It must never panic; 404 and 410 and only they mean
// "unknown"; anything it accepts is a valid configuration for the asked
// key that survives the JSON round trip unchanged; every error says what
// failed.
func FuzzLookupAnswer(f *testing.F) {
	key := testKey(1)
	seeds := []struct {
		status int
		body   string
	}{
		{200, `{"public_key":"` + key.String() + `","allowed_ips":["198.18.0.2/32","fd00::2/128"],"preshared_key":"BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=","persistent_keepalive":25,"endpoint":"198.18.1.1:51820"}`},
		{200, `{"allowed_ips":[]}`},
		{200, `{not json`},
		{200, `{"allowed_ips":["300.1.1.1/32"]}`},
		{200, `{"public_key":"AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=","allowed_ips":[]}`},
		{200, `{"allowed_ips":["198.18.0.1/33"],"persistent_keepalive":-1}`},
		{200, `{"endpoint":"[fe80::1%eth0]:1"}`},
		{200, `{"endpoint":"0.0.0.0:0"}`},
		{200, `{"allowed_ips":null} trailing`},
		{200, `{"allowed_ips":["198.18.0.0/15"],"allowed_ips":["0.0.0.0/0"]}`},
		{200, `{"persistent_keepalive":1e400}`},
		{404, ``},
		{410, `gone`},
		{500, `boom`},
		{302, ``},
	}
	for _, s := range seeds {
		f.Add(s.status, []byte(s.body))
	}
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		if status < 100 || status > 999 {
			return // net/http never hands out such a status
		}
		p, err := New(Config{URL: "https://control.invalid/v1/peers", Client: &http.Client{Transport: cannedTransport{status, body}}})
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := p.LookupPeer(context.Background(), key)
		unknown := status == http.StatusNotFound || status == http.StatusGone
		if errors.Is(err, hooks.ErrUnknownPeer) != unknown {
			t.Fatalf("status %d: err %v, want unknown=%v", status, err, unknown)
		}
		if err != nil {
			if !unknown && !strings.HasPrefix(err.Error(), "failed to ") {
				t.Fatalf("error %q does not say what failed", err)
			}
			return
		}
		if status != http.StatusOK {
			t.Fatalf("status %d accepted", status)
		}
		if verr := cfg.Validate(key); verr != nil {
			t.Fatalf("accepted an invalid configuration: %v", verr)
		}
		// What was accepted survives the control plane's own encoding.
		js, err := json.Marshal(FromConfig(key, cfg))
		if err != nil {
			t.Fatal(err)
		}
		var jp Peer
		if err := json.Unmarshal(js, &jp); err != nil {
			t.Fatal(err)
		}
		again, err := jp.Config()
		if err != nil {
			t.Fatalf("re-encoded answer %s does not decode: %v", js, err)
		}
		if !again.Equal(cfg) || again.PublicKey != key {
			t.Fatalf("round trip changed %+v into %+v (%s)", cfg, again, js)
		}
	})
}
