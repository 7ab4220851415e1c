package wgconf

import (
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/wghooks/wghooks/uapi"
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
	wantAll(t, "UAPI lines", joined,
		"wghooks_endpoint=my-wireguard-peer.mydomain.tld:51820",
		"endpoint=[fd00::1]:51820",
		"allowed_ip=172.25.1.1/24",
		"allowed_ip=198.18.0.9/32",
		"persistent_keepalive_interval=20",
		"replace_peers=true",
	)
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

// testKey is a distinct, valid key for each i.
func testKey(i int) string {
	var k [32]byte
	binary.BigEndian.PutUint32(k[:], uint32(i)+1)
	return base64.StdEncoding.EncodeToString(k[:])
}

// TestParseLargeConfigs: what `wg setconf` accepts, both readers accept;
// a line over 64 KiB and a file over 1 MiB broke a bufio.Scanner.
func TestParseLargeConfigs(t *testing.T) {
	var long strings.Builder
	long.WriteString("[Interface]\nPrivateKey = " + testKey(0) + "\n[Peer]\nPublicKey = " + testKey(1) + "\nAllowedIPs = ")
	base := netip.MustParseAddr("198.18.0.0").As4()
	for i := 0; i < 5000; i++ {
		if i > 0 {
			long.WriteString(", ")
		}
		a := base
		a[1] += byte(i >> 16)
		a[2], a[3] = byte(i>>8), byte(i)
		if i%2 == 0 {
			long.WriteString(netip.PrefixFrom(netip.AddrFrom4(a), 32).String())
		} else {
			fmt.Fprintf(&long, "fd00::%x/128", i)
		}
	}
	long.WriteString("\nEndpoint = gw.example.test:51820\n")

	var many strings.Builder
	many.WriteString("[Interface]\nPrivateKey = " + testKey(0) + "\nListenPort = 51820\n")
	for i := 1; i <= 7000; i++ {
		fmt.Fprintf(&many, "\n[Peer]\nPublicKey = %s\nAllowedIPs = 198.18.%d.%d/32, fd00::%x/128\nEndpoint = peer%d.vpn.example.test:51820\nPersistentKeepalive = 25\n",
			testKey(i), i>>8, i&0xff, i, i)
	}
	if long.Len() <= 64<<10 || many.Len() <= 1<<20 {
		t.Fatalf("test files too small: %d, %d bytes", long.Len(), many.Len())
	}

	for _, tc := range []struct {
		name         string
		text         string
		peers, allow int
	}{
		{"5000-prefix line", long.String(), 1, 5000},
		{"7000 peers", many.String(), 7000, 14000},
	} {
		c, err := Parse(strings.NewReader(tc.text))
		if err != nil {
			t.Fatalf("%s: Parse: %v", tc.name, err)
		}
		tol, problems := ParseTolerant(strings.NewReader(tc.text))
		if len(problems) > 0 {
			t.Fatalf("%s: ParseTolerant: %v", tc.name, problems)
		}
		for _, c := range []*Config{c, tol} {
			allow := 0
			for _, p := range c.Peers {
				allow += len(p.AllowedIPs)
			}
			if len(c.Peers) != tc.peers || allow != tc.allow || len(c.HostEndpoints()) != tc.peers {
				t.Errorf("%s: %d peers, %d allowed IPs, %d hostnames; want %d, %d, %d",
					tc.name, len(c.Peers), allow, len(c.HostEndpoints()), tc.peers, tc.allow, tc.peers)
			}
		}
	}
}

// TestParseTolerantSkipsAndRedacts: an unusable line is skipped and
// reported by line and key, never by its text (it may be a secret).
func TestParseTolerantSkipsAndRedacts(t *testing.T) {
	conf := strings.Join([]string{
		"[Interface]",
		"PrivateKey = SECRETxxPRIVATE",                // 2: bad key
		"SECRETxxGARBAGE",                             // 3: no '='
		"[Peer]",                                      // 4: no usable PublicKey
		"PublicKey = SECRETxxPUBLIC",                  // 5
		"Endpoint = dropped.example.test:51820",       //
		"[Peer]",                                      // 7
		"PublicKey = " + testKey(7),                   //
		"PresharedKey = SECRETxxPSK",                  // 9
		"AllowedIPs = 198.18.0.1/32, SECRETxxALLOWED", // 10: whole line skipped
		"Endpoint = kept.example.test:51820",          //
		"Frobnicate SECRETxxKEY= 1",                   // 12: unknown key
		"[Elsewhere]",                                 // 13
		"Endpoint = other.example.test:1",             // 14
	}, "\n")
	c, problems := ParseTolerant(strings.NewReader(conf))
	var text []string
	for _, p := range problems {
		text = append(text, p.Error())
	}
	joined := strings.Join(text, "\n")
	if strings.Contains(joined, "SECRET") {
		t.Errorf("a problem quotes the file:\n%s", joined)
	}
	wantAll(t, "problems", joined,
		"line 2 (PrivateKey): not a key",
		"line 3: want Key = Value",
		"line 5 (PublicKey): not a key",
		"line 9 (PresharedKey): not a key",
		"line 10 (AllowedIPs): entry 2 is not an address",
		"line 12: unknown key",
		"line 13: unknown section",
		"line 14 (Endpoint): key outside a known section",
		"line 4: [Peer] has no usable PublicKey",
	)
	if len(c.Peers) != 1 || c.Peers[0].Endpoint != "kept.example.test:51820" || len(c.Peers[0].AllowedIPs) != 0 || c.PrivateKey != nil {
		t.Errorf("kept %+v", c)
	}
	// The strict reader stops at the first, without quoting it either.
	if _, err := Parse(strings.NewReader(conf)); err == nil || strings.Contains(err.Error(), "SECRET") || !strings.Contains(err.Error(), "line 2 (PrivateKey)") {
		t.Errorf("Parse: %v", err)
	}
}

// wantAll fails t for each of want that text lacks.
func wantAll(t *testing.T, what, text string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(text, w) {
			t.Errorf("%s lack %q:\n%s", what, w, text)
		}
	}
}
