package feature

import (
	"encoding/hex"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// Config is a typed configuration change, for Host.Configure: what a
// feature would otherwise write as UAPI text to its own device.
type Config struct {
	// ListenPort, when set, changes the listen port (0: a random one).
	ListenPort *uint16
	Peers      []PeerConfig
}

// PeerConfig changes one peer. Zero fields leave the peer's setting alone.
type PeerConfig struct {
	PublicKey Key
	// Remove removes the peer; nothing else applies.
	Remove bool
	// UpdateOnly changes the peer only if it exists.
	UpdateOnly bool
	// Endpoint, when valid, sets the peer's endpoint.
	Endpoint netip.AddrPort
	// PresharedKey, when set, sets the preshared key (all zero: none).
	PresharedKey *[32]byte
	// Keepalive, when set, sets the persistent keepalive interval
	// (0: off), in whole seconds.
	Keepalive *time.Duration
	// ReplaceAllowedIPs replaces the allowed IPs by AllowedIPs; without
	// it AllowedIPs are added.
	ReplaceAllowedIPs bool
	AllowedIPs        []netip.Prefix
}

// UAPI returns c as the lines of a set transaction (without the final
// blank line), the only language upstream takes configuration in.
func (c Config) UAPI() string {
	var b strings.Builder
	if c.ListenPort != nil {
		b.WriteString("listen_port=" + strconv.Itoa(int(*c.ListenPort)) + "\n")
	}
	for _, p := range c.Peers {
		b.WriteString("public_key=" + hex.EncodeToString(p.PublicKey[:]) + "\n")
		if p.Remove {
			b.WriteString("remove=true\n")
			continue
		}
		if p.UpdateOnly {
			b.WriteString("update_only=true\n")
		}
		if p.ReplaceAllowedIPs {
			b.WriteString("replace_allowed_ips=true\n")
		}
		if p.PresharedKey != nil {
			b.WriteString("preshared_key=" + hex.EncodeToString(p.PresharedKey[:]) + "\n")
		}
		if p.Keepalive != nil {
			b.WriteString("persistent_keepalive_interval=" + strconv.Itoa(int(*p.Keepalive/time.Second)) + "\n")
		}
		if p.Endpoint.IsValid() {
			b.WriteString("endpoint=" + p.Endpoint.String() + "\n")
		}
		for _, ip := range p.AllowedIPs {
			b.WriteString("allowed_ip=" + ip.Masked().String() + "\n")
		}
	}
	return b.String()
}
