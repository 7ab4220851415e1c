// Package peerrow reads and writes one stored peer's columns, the same
// way for every peer store (hooks/sqlstore, hooks/pgstore): allowed IPs
// as `wg` writes them, the preshared key as 32 bytes or none, the
// keepalive in whole seconds, the endpoint as ip:port or empty. A row
// that does not read is an error naming the peer, never a secret.
package peerrow

import (
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/wghooks/wghooks/hooks"
)

// Decode reads one row of key: its allowed IPs (ParseAllowedIPs), its
// preshared key (nil, empty or 32 bytes), its keepalive in seconds and
// its endpoint ("" for none). The result is validated (PeerConfig.Validate).
func Decode(key hooks.PublicKey, ips string, psk []byte, keepalive int64, ep string) (hooks.PeerConfig, error) {
	cfg := hooks.PeerConfig{PublicKey: key}
	var err error
	if cfg.AllowedIPs, err = ParseAllowedIPs(ips); err != nil {
		return cfg, fmt.Errorf("failed to read peer %s: %w", key, err)
	}
	switch len(psk) {
	case 0:
	case 32:
		copy(cfg.PresharedKey[:], psk)
	default:
		return cfg, fmt.Errorf("failed to read peer %s: preshared key is %d bytes, not 32", key, len(psk))
	}
	if keepalive < 0 || keepalive > 65535 {
		return cfg, fmt.Errorf("failed to read peer %s: persistent keepalive %d is not 0..65535", key, keepalive)
	}
	cfg.PersistentKeepalive = time.Duration(keepalive) * time.Second
	if ep != "" {
		if cfg.Endpoint, err = netip.ParseAddrPort(ep); err != nil {
			return cfg, fmt.Errorf("failed to read peer %s: endpoint %q: %w", key, ep, err)
		}
	}
	if err := cfg.Validate(key); err != nil {
		return cfg, fmt.Errorf("failed to read peer %s: %w", key, err)
	}
	return cfg, nil
}

// Encoded is one peer's configuration in column form, the inverse of
// Decode.
type Encoded struct {
	AllowedIPs   string
	PresharedKey []byte // nil for none
	Keepalive    int64
	Endpoint     string
}

// Encode checks cfg as the configuration of its own key (which must be
// set) and returns its columns.
func Encode(cfg hooks.PeerConfig) (Encoded, error) {
	if cfg.PublicKey == (hooks.PublicKey{}) {
		return Encoded{}, fmt.Errorf("failed to store peer: no public key")
	}
	if err := cfg.Validate(cfg.PublicKey); err != nil {
		return Encoded{}, fmt.Errorf("failed to store peer: %w", err)
	}
	e := Encoded{AllowedIPs: FormatAllowedIPs(cfg.AllowedIPs), Keepalive: int64(cfg.PersistentKeepalive / time.Second)}
	if cfg.PresharedKey != ([32]byte{}) {
		e.PresharedKey = append([]byte(nil), cfg.PresharedKey[:]...)
	}
	if cfg.Endpoint.IsValid() {
		e.Endpoint = cfg.Endpoint.String()
	}
	return e, nil
}

// ParseAllowedIPs parses a comma-separated list of prefixes (spaces
// allowed), as `wg` writes AllowedIPs. A bare address means a host
// prefix.
func ParseAllowedIPs(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		p, err := netip.ParsePrefix(f)
		if err != nil {
			a, aerr := netip.ParseAddr(f)
			if aerr != nil {
				return nil, fmt.Errorf("failed to parse allowed IP %q: %w", f, err)
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		out = append(out, p)
	}
	return out, nil
}

// FormatAllowedIPs writes ps as ParseAllowedIPs reads them.
func FormatAllowedIPs(ps []netip.Prefix) string {
	parts := make([]string, len(ps))
	for i, p := range ps {
		parts[i] = p.String()
	}
	return strings.Join(parts, ",")
}

// ContainsAddr reports whether one of ps holds a.
func ContainsAddr(ps []netip.Prefix, a netip.Addr) bool {
	for _, p := range ps {
		if p.Masked().Contains(a) {
			return true
		}
	}
	return false
}

// ValidState reports what is wrong with s as a peer's learned state to
// record (hooks.StateStore): it needs a key, a usable endpoint, a
// handshake time and the writing gateway's key.
func ValidState(s hooks.PeerState) error {
	switch ep := s.Endpoint; {
	case s.Key == (hooks.PublicKey{}):
		return fmt.Errorf("no public key")
	case s.Gateway == (hooks.PublicKey{}):
		return fmt.Errorf("no gateway key")
	case !ep.IsValid() || ep.Port() == 0 || ep.Addr().IsUnspecified():
		return fmt.Errorf("invalid endpoint %q", ep)
	case s.LastHandshake.IsZero():
		return fmt.Errorf("no last handshake")
	}
	return nil
}
