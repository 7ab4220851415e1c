// Package wgconf reads WireGuard configuration files in the format of
// wg(8) and wg-quick(8) and turns them into UAPI set transactions, with
// one difference from `wg setconf`: an Endpoint given as a hostname stays
// a hostname. It becomes the wghooks_endpoint extension key, so the device
// keeps the name, re-resolves it and fails over between its addresses,
// instead of `wg` resolving it once.
//
// wg-quick's own keys (Address, DNS, MTU, Table, PreUp, PostUp, PreDown,
// PostDown, SaveConfig) are accepted and ignored: they configure the host,
// not the device.
package wgconf

import (
	"bufio"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"
)

// Config is a parsed configuration file.
type Config struct {
	PrivateKey *[32]byte // nil when not given
	ListenPort *uint16
	FwMark     *uint32
	Peers      []Peer
}

// Peer is one [Peer] section.
type Peer struct {
	PublicKey           [32]byte
	PresharedKey        *[32]byte
	AllowedIPs          []netip.Prefix
	Endpoint            string // "ip:port", "[v6]:port" or "host:port"; "" for none
	PersistentKeepalive *uint16
}

// HostEndpoint reports whether the endpoint is a hostname, not an address.
func (p Peer) HostEndpoint() bool {
	if p.Endpoint == "" {
		return false
	}
	_, err := netip.ParseAddrPort(p.Endpoint)
	return err != nil
}

// maxFileSize bounds what Parse reads.
const maxFileSize = 1 << 20

// Parse reads a configuration file. Errors name the line and quote it.
func Parse(r io.Reader) (*Config, error) {
	c := &Config{}
	var section string
	var peer *Peer
	sc := bufio.NewScanner(io.LimitReader(r, maxFileSize))
	sc.Buffer(make([]byte, 0, 4096), 64<<10)
	n := 0
	for sc.Scan() {
		n++
		raw := sc.Text()
		line := raw
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		fail := func(format string, args ...any) (*Config, error) {
			return nil, fmt.Errorf("failed to parse line %d %q: %s", n, raw, fmt.Sprintf(format, args...))
		}
		if strings.HasPrefix(line, "[") {
			switch strings.ToLower(line) {
			case "[interface]":
				section, peer = "interface", nil
			case "[peer]":
				section = "peer"
				c.Peers = append(c.Peers, Peer{})
				peer = &c.Peers[len(c.Peers)-1]
			default:
				return fail("unknown section")
			}
			continue
		}
		key, value, ok := strings.Cut(line, "=")
		if !ok {
			return fail("want Key = Value")
		}
		key = strings.ToLower(strings.TrimSpace(key))
		value = strings.TrimSpace(value)
		var err error
		switch section {
		case "interface":
			err = c.setInterface(key, value)
		case "peer":
			err = peer.set(key, value)
		default:
			return fail("key outside a section")
		}
		if err != nil {
			return fail("%v", err)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("failed to read configuration: %w", err)
	}
	for i, p := range c.Peers {
		if p.PublicKey == [32]byte{} {
			return nil, fmt.Errorf("failed to parse peer %d: no PublicKey", i+1)
		}
	}
	return c, nil
}

func (c *Config) setInterface(key, value string) error {
	switch key {
	case "privatekey":
		k, err := parseKey(value)
		if err != nil {
			return err
		}
		c.PrivateKey = &k
	case "listenport":
		p, err := strconv.ParseUint(value, 10, 16)
		if err != nil {
			return fmt.Errorf("invalid ListenPort %q", value)
		}
		port := uint16(p)
		c.ListenPort = &port
	case "fwmark":
		if value == "off" {
			var zero uint32
			c.FwMark = &zero
			return nil
		}
		m, err := strconv.ParseUint(value, 0, 32)
		if err != nil {
			return fmt.Errorf("invalid FwMark %q", value)
		}
		mark := uint32(m)
		c.FwMark = &mark
	case "address", "dns", "mtu", "table", "preup", "postup", "predown", "postdown", "saveconfig":
		// wg-quick's: configure the host, not the device.
	default:
		return fmt.Errorf("unknown key %q in [Interface]", key)
	}
	return nil
}

func (p *Peer) set(key, value string) error {
	switch key {
	case "publickey":
		k, err := parseKey(value)
		if err != nil {
			return err
		}
		p.PublicKey = k
	case "presharedkey":
		k, err := parseKey(value)
		if err != nil {
			return err
		}
		p.PresharedKey = &k
	case "allowedips":
		for _, s := range strings.Split(value, ",") {
			s = strings.TrimSpace(s)
			if s == "" {
				continue
			}
			pfx, err := netip.ParsePrefix(s)
			if err != nil {
				a, aerr := netip.ParseAddr(s)
				if aerr != nil {
					return fmt.Errorf("invalid AllowedIPs entry %q", s)
				}
				pfx = netip.PrefixFrom(a, a.BitLen())
			}
			p.AllowedIPs = append(p.AllowedIPs, pfx)
		}
	case "endpoint":
		if err := validEndpoint(value); err != nil {
			return err
		}
		p.Endpoint = value
	case "persistentkeepalive":
		var ka uint16
		if value != "off" {
			v, err := strconv.ParseUint(value, 10, 16)
			if err != nil {
				return fmt.Errorf("invalid PersistentKeepalive %q", value)
			}
			ka = uint16(v)
		}
		p.PersistentKeepalive = &ka
	default:
		return fmt.Errorf("unknown key %q in [Peer]", key)
	}
	return nil
}

// validEndpoint accepts ip:port, [v6]:port and host:port with a port of
// 1..65535. The device checks the host name itself.
func validEndpoint(s string) error {
	i := strings.LastIndexByte(s, ':')
	if i <= 0 {
		return fmt.Errorf("invalid Endpoint %q: want host:port", s)
	}
	port, err := strconv.ParseUint(s[i+1:], 10, 16)
	if err != nil || port == 0 {
		return fmt.Errorf("invalid Endpoint %q: bad port", s)
	}
	host := s[:i]
	if strings.ContainsAny(host, " \t=,") {
		return fmt.Errorf("invalid Endpoint %q: bad host", s)
	}
	if strings.Contains(host, ":") && !(strings.HasPrefix(host, "[") && strings.HasSuffix(host, "]")) {
		return fmt.Errorf("invalid Endpoint %q: an IPv6 address needs brackets", s)
	}
	return nil
}

func parseKey(s string) ([32]byte, error) {
	var k [32]byte
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil || len(b) != 32 {
		return k, fmt.Errorf("invalid key %q: want 32 bytes in base64", s)
	}
	copy(k[:], b)
	return k, nil
}

// UAPI returns the set transaction's lines (without "set=1" and the blank
// line) that make a device match c, like `wg setconf`: peers not in c
// are removed. Hostname endpoints become wghooks_endpoint.
func (c *Config) UAPI() []string {
	var out []string
	if c.PrivateKey != nil {
		out = append(out, "private_key="+hex.EncodeToString(c.PrivateKey[:]))
	}
	if c.ListenPort != nil {
		out = append(out, fmt.Sprintf("listen_port=%d", *c.ListenPort))
	}
	if c.FwMark != nil {
		out = append(out, fmt.Sprintf("fwmark=%d", *c.FwMark))
	}
	out = append(out, "replace_peers=true")
	for _, p := range c.Peers {
		out = append(out, "public_key="+hex.EncodeToString(p.PublicKey[:]))
		if p.PresharedKey != nil {
			out = append(out, "preshared_key="+hex.EncodeToString(p.PresharedKey[:]))
		}
		switch {
		case p.HostEndpoint():
			out = append(out, "wghooks_endpoint="+p.Endpoint)
		case p.Endpoint != "":
			out = append(out, "endpoint="+p.Endpoint)
		}
		if p.PersistentKeepalive != nil {
			out = append(out, fmt.Sprintf("persistent_keepalive_interval=%d", *p.PersistentKeepalive))
		}
		out = append(out, "replace_allowed_ips=true")
		for _, a := range p.AllowedIPs {
			out = append(out, "allowed_ip="+a.String())
		}
	}
	return out
}

// HostEndpoints returns the hostname endpoints by peer public key.
func (c *Config) HostEndpoints() map[[32]byte]string {
	out := map[[32]byte]string{}
	for _, p := range c.Peers {
		if p.HostEndpoint() {
			out[p.PublicKey] = p.Endpoint
		}
	}
	return out
}
