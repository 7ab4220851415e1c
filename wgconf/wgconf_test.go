package wgconf

import (
	"strings"
	"testing"

	"wghooks/uapi"
)

const sample = `
[Interface]
PrivateKey = 6KlCNMKAkKcfT+iQxfl7ABTz4yiso5iwGjJgdGVu9VQ=
Address = 172.25.1.2/24,fd08:5771:2371::2/64
ListenPort = 51820
DNS = 1.1.1.1
PostUp = echo up # a comment

[Peer]
PublicKey = fFZZy7EIFsMwoOLXJgeJOV3S0XAB9VaW7Ig7Dq12zCI=
AllowedIPs = 172.25.1.1/24, fd08:5771:2371::1/64
PersistentKeepalive = 20
Endpoint = my-wireguard-peer.mydomain.tld:51820

[peer]
publickey = etGn5y6izVL8im6ZDEERzChKdfzMUiscao0QRTDmGXA=
endpoint = [fd00::1]:51820
allowedips = 198.18.0.9
`

func TestParseKeepsHostnames(t *testing.T) {
	c, err := Parse(strings.NewReader(sample))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Peers) != 2 || *c.ListenPort != 51820 {
		t.Fatalf("parsed %+v", c)
	}
	lines := c.UAPI()
	joined := strings.Join(lines, "\n")
	for _, want := range []string{
		"wghooks_endpoint=my-wireguard-peer.mydomain.tld:51820",
		"endpoint=[fd00::1]:51820",
		"allowed_ip=172.25.1.1/24",
		"allowed_ip=198.18.0.9/32",
		"persistent_keepalive_interval=20",
		"replace_peers=true",
	} {
		if !strings.Contains(joined, want) {
			t.Errorf("UAPI lines lack %q:\n%s", want, joined)
		}
	}
	if len(c.HostEndpoints()) != 1 {
		t.Errorf("HostEndpoints = %v", c.HostEndpoints())
	}
	// The lines are a valid transaction for wghooks' parser.
	ext := &uapi.Extensions{Peer: map[string]func(string) error{"wghooks_endpoint": nil}}
	if _, err := uapi.ParseSet(lines, ext); err != nil {
		t.Fatalf("UAPI lines rejected: %v", err)
	}
}

func TestParseErrors(t *testing.T) {
	for _, bad := range []string{
		"PrivateKey = x",
		"[Interface]\nPrivateKey = short",
		"[Peer]\nEndpoint = host",
		"[Peer]\nPublicKey = fFZZy7EIFsMwoOLXJgeJOV3S0XAB9VaW7Ig7Dq12zCI=\nEndpoint = host:99999",
		"[Peer]\nPublicKey = fFZZy7EIFsMwoOLXJgeJOV3S0XAB9VaW7Ig7Dq12zCI=\nEndpoint = fd00::1:51820",
		"[Peer]\nAllowedIPs = 10.0.0.0/8",
		"[Peer]\nBogus = 1",
		"[Nope]",
		"[Interface]\nnot a key value",
	} {
		if _, err := Parse(strings.NewReader(bad)); err == nil {
			t.Errorf("accepted %q", bad)
		} else if !strings.Contains(err.Error(), "failed to") {
			t.Errorf("%q: error %q", bad, err)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add(sample)
	f.Add("[Peer]\nPublicKey = fFZZy7EIFsMwoOLXJgeJOV3S0XAB9VaW7Ig7Dq12zCI=\nEndpoint = a:1")
	ext := &uapi.Extensions{Peer: map[string]func(string) error{"wghooks_endpoint": nil}}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := Parse(strings.NewReader(s))
		if err != nil {
			return
		}
		lines := c.UAPI()
		for _, l := range lines {
			if strings.ContainsAny(l, "\n") || strings.Count(l, "=") < 1 {
				t.Fatalf("bad UAPI line %q", l)
			}
			k, v, _ := strings.Cut(l, "=")
			if strings.Contains(v, "=") {
				t.Fatalf("value with '=' in %q (key %s)", l, k)
			}
		}
		// Whatever parses must render a transaction wghooks parses,
		// except hostnames, which the device validates itself.
		if _, err := uapi.ParseSet(lines, ext); err != nil {
			t.Fatalf("rendered lines rejected: %v\n%s", err, strings.Join(lines, "\n"))
		}
	})
}
