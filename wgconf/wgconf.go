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
//
// Parse is strict, for a file wghooks applies itself (`wghooks setconf`);
// ParseTolerant skips and reports what it cannot use, for a file that
// `wg setconf` applies and wghooks only reads beside it (the daemon's
// hostname endpoints). Neither limits a line's length; both stop at
// 256 MiB.
package wgconf

import (
	"bufio"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"
	"unicode"
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

// maxFileSize bounds what Parse and ParseTolerant read: far above any
// real configuration (7,000 peers are about 1.3 MiB), and a single line
// may use all of it, as `wg setconf` has no line limit either.
const maxFileSize = 256 << 20

// Problem is a part of a file that could not be used. Its text names the
// line and the key, never the line's content: a line may hold a
// PrivateKey or a PresharedKey.
type Problem struct {
	Line int    // 1-based; 0 when it is about the whole file
	Key  string // the key as wg(8) spells it, or "" when there is none
	Msg  string
}

func (p Problem) Error() string {
	switch {
	case p.Line == 0:
		return p.Msg
	case p.Key == "":
		return fmt.Sprintf("line %d: %s", p.Line, p.Msg)
	}
	return fmt.Sprintf("line %d (%s): %s", p.Line, p.Key, p.Msg)
}

// Parse reads a configuration file strictly, as `wg setconf` would apply
// it: the first unusable part is the error. Errors name the line and the
// key but do not quote the line.
func Parse(r io.Reader) (*Config, error) {
	c, problems := parse(r, true)
	if len(problems) > 0 {
		return nil, fmt.Errorf("failed to parse configuration: %w", problems[0])
	}
	return c, nil
}

// ParseTolerant reads what it can use of a configuration file: a line it
// cannot use is skipped, a [Peer] without a usable PublicKey is dropped,
// and each is reported as a Problem. A read error ends the reading and is
// the last Problem. It is for readers of a file that something else
// applies (wg-quick runs `wg setconf`), which must not refuse what that
// accepts.
func ParseTolerant(r io.Reader) (*Config, []Problem) {
	return parse(r, false)
}

// parse reads lines as wg(8) does: a '#' starts a comment, every blank
// character is removed, keys and sections are matched without case.
// strict stops at the first Problem.
func parse(r io.Reader, strict bool) (*Config, []Problem) {
	c := &Config{}
	var problems []Problem
	report := func(p Problem) bool {
		problems = append(problems, p)
		return strict
	}
	var section string  // "interface", "peer", or "" (none or unknown)
	peerLine := []int{} // the line of each [Peer] in c.Peers
	br := bufio.NewReader(io.LimitReader(r, maxFileSize+1))
	read := 0
	n := 0
	for {
		raw, err := br.ReadString('\n')
		read += len(raw)
		if read > maxFileSize {
			report(Problem{Msg: fmt.Sprintf("failed to read configuration: larger than %d bytes; read up to line %d", maxFileSize, n)})
			break
		}
		if err != nil && err != io.EOF {
			report(Problem{Msg: fmt.Sprintf("failed to read configuration after line %d: %v", n, err)})
			break
		}
		if raw != "" {
			n++
			if stop := c.parseLine(raw, n, &section, &peerLine, report); stop {
				break
			}
		}
		if err != nil {
			break
		}
	}
	if strict && len(problems) > 0 {
		return nil, problems
	}
	kept := c.Peers[:0]
	for i, p := range c.Peers {
		if p.PublicKey == [32]byte{} {
			if report(Problem{Line: peerLine[i], Msg: "[Peer] has no usable PublicKey; the section is skipped"}) {
				return nil, problems
			}
			continue
		}
		kept = append(kept, p)
	}
	c.Peers = kept
	return c, problems
}

// parseLine applies one line to c. It reports what it cannot use and
// returns whether report asked to stop.
func (c *Config) parseLine(raw string, n int, section *string, peerLine *[]int, report func(Problem) bool) bool {
	if i := strings.IndexByte(raw, '#'); i >= 0 {
		raw = raw[:i]
	}
	line := strings.Map(func(r rune) rune {
		if unicode.IsSpace(r) {
			return -1
		}
		return r
	}, raw)
	if line == "" {
		return false
	}
	if strings.HasPrefix(line, "[") {
		switch strings.ToLower(line) {
		case "[interface]":
			*section = "interface"
		case "[peer]":
			*section = "peer"
			c.Peers = append(c.Peers, Peer{})
			*peerLine = append(*peerLine, n)
		default:
			*section = ""
			return report(Problem{Line: n, Msg: "unknown section; its lines are skipped"})
		}
		return false
	}
	k, value, ok := strings.Cut(line, "=")
	if !ok {
		return report(Problem{Line: n, Msg: "want Key = Value"})
	}
	kd, known := keys[strings.ToLower(k)]
	if !known {
		return report(Problem{Line: n, Msg: "unknown key"})
	}
	key := kd.name
	var err error
	switch {
	case *section == "interface" && !kd.peer:
		err = c.setInterface(key, value)
	case *section == "peer" && kd.peer:
		err = c.Peers[len(c.Peers)-1].set(key, value)
	case *section == "":
		return report(Problem{Line: n, Key: key, Msg: "key outside a known section"})
	case kd.peer:
		return report(Problem{Line: n, Key: key, Msg: "a [Peer] key in [Interface]"})
	default:
		return report(Problem{Line: n, Key: key, Msg: "an [Interface] key in [Peer]"})
	}
	if err != nil {
		return report(Problem{Line: n, Key: key, Msg: err.Error()})
	}
	return false
}

// keys maps each key, in lower case, to its spelling in wg(8) and
// wg-quick(8) and whether it belongs in [Peer].
var keys = map[string]struct {
	name string
	peer bool
}{
	"privatekey": {"PrivateKey", false}, "listenport": {"ListenPort", false}, "fwmark": {"FwMark", false},
	"address": {"Address", false}, "dns": {"DNS", false}, "mtu": {"MTU", false}, "table": {"Table", false},
	"preup": {"PreUp", false}, "postup": {"PostUp", false}, "predown": {"PreDown", false}, "postdown": {"PostDown", false},
	"saveconfig": {"SaveConfig", false},
	"publickey":  {"PublicKey", true}, "presharedkey": {"PresharedKey", true}, "allowedips": {"AllowedIPs", true},
	"endpoint": {"Endpoint", true}, "persistentkeepalive": {"PersistentKeepalive", true},
}

func (c *Config) setInterface(key, value string) error {
	switch key {
	case "PrivateKey":
		k, err := parseKey(value)
		if err != nil {
			return err
		}
		c.PrivateKey = &k
	case "ListenPort":
		p, err := strconv.ParseUint(value, 10, 16)
		if err != nil {
			return errors.New("not a port (0..65535)")
		}
		port := uint16(p)
		c.ListenPort = &port
	case "FwMark":
		if value == "off" {
			var zero uint32
			c.FwMark = &zero
			return nil
		}
		m, err := strconv.ParseUint(value, 0, 32)
		if err != nil {
			return errors.New("not a mark (0..0xffffffff or off)")
		}
		mark := uint32(m)
		c.FwMark = &mark
	case "Address", "DNS", "MTU", "Table", "PreUp", "PostUp", "PreDown", "PostDown", "SaveConfig":
		// wg-quick's: configure the host, not the device.
	}
	return nil
}

func (p *Peer) set(key, value string) error {
	switch key {
	case "PublicKey":
		k, err := parseKey(value)
		if err != nil {
			return err
		}
		p.PublicKey = k
	case "PresharedKey":
		k, err := parseKey(value)
		if err != nil {
			return err
		}
		p.PresharedKey = &k
	case "AllowedIPs":
		// All or nothing: a line with a bad entry adds none of its
		// entries.
		var add []netip.Prefix
		for i, s := range strings.Split(value, ",") {
			if s == "" {
				continue
			}
			pfx, err := netip.ParsePrefix(s)
			if err != nil {
				a, aerr := netip.ParseAddr(s)
				if aerr != nil {
					return fmt.Errorf("entry %d is not an address or a prefix", i+1)
				}
				pfx = netip.PrefixFrom(a, a.BitLen())
			}
			add = append(add, pfx)
		}
		p.AllowedIPs = append(p.AllowedIPs, add...)
	case "Endpoint":
		if err := validEndpoint(value); err != nil {
			return err
		}
		p.Endpoint = value
	case "PersistentKeepalive":
		var ka uint16
		if value != "off" {
			v, err := strconv.ParseUint(value, 10, 16)
			if err != nil {
				return errors.New("not 0..65535 or off")
			}
			ka = uint16(v)
		}
		p.PersistentKeepalive = &ka
	}
	return nil
}

// validEndpoint accepts ip:port, [v6]:port and host:port with a port of
// 1..65535. The device checks the host name itself.
func validEndpoint(s string) error {
	i := strings.LastIndexByte(s, ':')
	if i <= 0 {
		return errors.New("want host:port")
	}
	port, err := strconv.ParseUint(s[i+1:], 10, 16)
	if err != nil || port == 0 {
		return errors.New("not a port (1..65535)")
	}
	host := s[:i]
	if strings.ContainsAny(host, " \t=,") {
		return errors.New("not a host")
	}
	if strings.Contains(host, ":") && !(strings.HasPrefix(host, "[") && strings.HasSuffix(host, "]")) {
		return errors.New("an IPv6 address needs brackets")
	}
	return nil
}

func parseKey(s string) ([32]byte, error) {
	var k [32]byte
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil || len(b) != 32 {
		return k, errors.New("not a key (32 bytes in base64)")
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
