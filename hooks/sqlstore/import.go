package sqlstore

import (
	"bufio"
	"encoding/base64"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/wghooks/wghooks/hooks"
)

// maxConfigLine bounds one line of an imported file, as wgconf bounds a
// whole file.
const maxConfigLine = 256 << 20

// ParseConfig reads the [Peer] sections of a WireGuard configuration, as
// `wg showconf IFACE` prints it (or a wg-quick file): PublicKey,
// AllowedIPs, PresharedKey, PersistentKeepalive and Endpoint. The
// [Interface] section and wg-quick's own keys are ignored. A malformed
// line fails the whole read, naming the line.
func ParseConfig(r io.Reader) ([]Peer, error) {
	var (
		peers   []Peer
		cur     *Peer
		section string
		lineNo  int
	)
	finish := func() error {
		if cur == nil {
			return nil
		}
		if cur.PublicKey == (hooks.PublicKey{}) {
			return fmt.Errorf("failed to parse config: [Peer] section ending before line %d has no PublicKey", lineNo)
		}
		peers = append(peers, *cur)
		cur = nil
		return nil
	}
	sc := bufio.NewScanner(r)
	// wg setconf takes lines of any length (an AllowedIPs list of
	// thousands of prefixes); bound them only by what a file may hold.
	sc.Buffer(make([]byte, 0, 64<<10), maxConfigLine)
	for sc.Scan() {
		lineNo++
		line := sc.Text()
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		if strings.HasPrefix(line, "[") {
			if err := finish(); err != nil {
				return nil, err
			}
			section = strings.ToLower(strings.Trim(line, "[] \t"))
			if section == "peer" {
				cur = &Peer{}
			}
			continue
		}
		if section != "peer" {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			return nil, fmt.Errorf("failed to parse config: line %d %q: no '='", lineNo, line)
		}
		name := strings.TrimSpace(k)
		k, v = strings.ToLower(name), strings.TrimSpace(v)
		if err := setField(cur, k, v); err != nil {
			if k == "presharedkey" {
				// A secret: name the key, never the value.
				return nil, fmt.Errorf("failed to parse config: line %d, %s: %w", lineNo, name, err)
			}
			return nil, fmt.Errorf("failed to parse config: line %d %q: %w", lineNo, line, err)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("failed to read config: %w", err)
	}
	if err := finish(); err != nil {
		return nil, err
	}
	return peers, nil
}

func setField(p *Peer, k, v string) error {
	switch k {
	case "publickey":
		key, err := hooks.ParsePublicKey(v)
		if err != nil {
			return err
		}
		p.PublicKey = key
	case "presharedkey":
		b, err := base64.StdEncoding.DecodeString(v)
		if err != nil || len(b) != 32 {
			return fmt.Errorf("preshared key is not base64 of 32 bytes")
		}
		copy(p.PresharedKey[:], b)
	case "allowedips":
		ips, err := ParseAllowedIPs(v)
		if err != nil {
			return err
		}
		p.AllowedIPs = append(p.AllowedIPs, ips...)
	case "persistentkeepalive":
		if v == "off" {
			return nil
		}
		n, err := strconv.ParseUint(v, 10, 16)
		if err != nil {
			return fmt.Errorf("persistent keepalive is not 0..65535 or off")
		}
		p.PersistentKeepalive = time.Duration(n) * time.Second
	case "endpoint":
		ep, err := netip.ParseAddrPort(v)
		if err != nil {
			return fmt.Errorf("endpoint is not ip:port (resolve hostnames first, as `wg showconf` does)")
		}
		p.Endpoint = ep
	}
	return nil
}
