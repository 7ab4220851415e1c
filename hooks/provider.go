package hooks

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"
)

// PublicKey is a WireGuard static public key (Curve25519, 32 bytes).
type PublicKey [32]byte

// String returns the key in base64, as `wg` prints it.
func (k PublicKey) String() string { return base64.StdEncoding.EncodeToString(k[:]) }

// Hex returns the key in hex, as UAPI carries it.
func (k PublicKey) Hex() string { return hex.EncodeToString(k[:]) }

// ParsePublicKey parses a key in base64 (as `wg` prints it) or hex (as
// UAPI carries it).
func ParsePublicKey(s string) (PublicKey, error) {
	var k PublicKey
	s = strings.TrimSpace(s)
	var b []byte
	var err error
	switch len(s) {
	case 44:
		b, err = base64.StdEncoding.DecodeString(s)
	case 64:
		b, err = hex.DecodeString(s)
	default:
		return k, fmt.Errorf("failed to parse key %q: want 44 base64 or 64 hex characters", s)
	}
	if err != nil || len(b) != 32 {
		return k, fmt.Errorf("failed to parse key %q: not base64 or hex of 32 bytes", s)
	}
	copy(k[:], b)
	return k, nil
}

// PeerConfig is what a Provider knows about one peer: enough to install it.
type PeerConfig struct {
	// PublicKey is the peer's key. Zero means "the key that was asked
	// for"; any other value must equal it.
	PublicKey PublicKey

	// AllowedIPs are the tunnel addresses routed to the peer and accepted
	// from it. Empty is valid (the handshake completes, no traffic flows).
	AllowedIPs []netip.Prefix

	// PresharedKey is the optional extra symmetric key. Zero means none.
	PresharedKey [32]byte

	// PersistentKeepalive is the keepalive interval, whole seconds up to
	// 65535. Zero means off.
	PersistentKeepalive time.Duration

	// Endpoint is where to reach the peer before it has sent anything.
	// Zero means "learn it from the peer's packets", which is the usual
	// case for peers installed on their own first initiation.
	Endpoint netip.AddrPort
}

// Validate reports the first thing wrong with c as the configuration of
// the peer with key want.
func (c PeerConfig) Validate(want PublicKey) error {
	if c.PublicKey != (PublicKey{}) && c.PublicKey != want {
		return fmt.Errorf("invalid peer config for %s: it names another key, %s", want, c.PublicKey)
	}
	for _, p := range c.AllowedIPs {
		if !p.IsValid() {
			return fmt.Errorf("invalid peer config for %s: invalid allowed IP %q", want, p)
		}
	}
	if c.PersistentKeepalive < 0 || c.PersistentKeepalive > 65535*time.Second || c.PersistentKeepalive%time.Second != 0 {
		return fmt.Errorf("invalid peer config for %s: persistent keepalive %v is not whole seconds in 0..65535", want, c.PersistentKeepalive)
	}
	if ep := c.Endpoint; ep != (netip.AddrPort{}) && (!ep.IsValid() || ep.Port() == 0 || ep.Addr().IsUnspecified()) {
		return fmt.Errorf("invalid peer config for %s: invalid endpoint %q", want, ep)
	}
	return nil
}

// Equal reports whether c and o configure the peer the same way.
func (c PeerConfig) Equal(o PeerConfig) bool {
	if c.PresharedKey != o.PresharedKey || c.PersistentKeepalive != o.PersistentKeepalive ||
		c.Endpoint != o.Endpoint || len(c.AllowedIPs) != len(o.AllowedIPs) {
		return false
	}
	for i := range c.AllowedIPs {
		if c.AllowedIPs[i] != o.AllowedIPs[i] {
			return false
		}
	}
	return true
}

// ErrUnknownPeer is what a Provider returns (possibly wrapped) for a key
// it does not know. The device refuses the peer and remembers the answer
// for a while (the negative cache) instead of asking again.
var ErrUnknownPeer = errors.New("unknown peer")

// Provider answers "which peer is this?" for just-in-time peers: the
// device asks it when an authenticated handshake initiation arrives from a
// key it does not hold, and again at the revalidation interval for the
// peers it installed.
//
// Contract:
//   - LookupPeer is called on a goroutine of the device's own, never on a
//     packet path; it may block (a database, an HTTP request) but must
//     return when ctx is done: the device gives up at its lookup timeout
//     and a provider that ignores ctx keeps its goroutine until it
//     returns.
//   - It is only ever asked about keys whose holder proved possession of
//     the private key, at most once at a time per key (concurrent asks are
//     merged), and not again for a key it called unknown until the
//     negative cache expires.
//   - It returns ErrUnknownPeer for keys it does not know. Any other error
//     means "cannot tell now": nothing is installed, and installed peers
//     are kept (an outage does not cut peers off).
//   - It must not call back into the device.
//   - It may be called concurrently for different keys.
type Provider interface {
	LookupPeer(ctx context.Context, key PublicKey) (PeerConfig, error)
}

// ProviderFunc adapts a function to Provider, for embedders.
type ProviderFunc func(ctx context.Context, key PublicKey) (PeerConfig, error)

// LookupPeer calls f.
func (f ProviderFunc) LookupPeer(ctx context.Context, key PublicKey) (PeerConfig, error) {
	return f(ctx, key)
}

// AddrProvider is what a Provider also implements when it can tell which
// peer a tunnel address belongs to: with it, and JITConfig.Outbound on, a
// packet from the TUN to an address no installed peer covers (a peer that
// was evicted, or never came) installs that peer, so the gateway can reach
// a client first. A Provider without it leaves that feature off.
//
// Contract, on top of Provider's:
//   - LookupAddr is asked about a unicast destination address of a packet
//     that no installed peer's allowed IPs cover, at most once at a time
//     per address, and not again for an address it called unknown until
//     the negative cache expires.
//   - The answer names the peer: PublicKey must be set, one of AllowedIPs
//     must contain addr, and Endpoint must be set (a peer without one
//     cannot be reached first; the answer is skipped). It passes the same
//     checks as LookupPeer's answers.
//   - It returns ErrUnknownPeer when no peer has addr, and an error
//     matching errors.ErrUnsupported when it cannot look up addresses at
//     all (the device then turns the outbound side off).
type AddrProvider interface {
	LookupAddr(ctx context.Context, addr netip.Addr) (PeerConfig, error)
}

// AddrProviderFunc adapts a function to AddrProvider. An embedder's
// provider of both kinds can be
//
//	struct {
//		hooks.ProviderFunc
//		hooks.AddrProviderFunc
//	}{byKey, byAddr}
type AddrProviderFunc func(ctx context.Context, addr netip.Addr) (PeerConfig, error)

// LookupAddr calls f.
func (f AddrProviderFunc) LookupAddr(ctx context.Context, addr netip.Addr) (PeerConfig, error) {
	return f(ctx, addr)
}

// PeerEventKind says what happened to a just-in-time peer.
type PeerEventKind int

const (
	// PeerInstalled: the provider knew the key and the peer was installed.
	PeerInstalled PeerEventKind = iota + 1
	// PeerRefused: the provider called the key unknown (or the negative
	// cache still did); its initiation was dropped.
	PeerRefused
	// PeerLookupFailed: the provider failed, timed out or answered invalid
	// data; nothing was installed.
	PeerLookupFailed
	// PeerEvicted: the peer was removed for idleness or to make room.
	PeerEvicted
	// PeerRevoked: revalidation found the key unknown; the peer was removed.
	PeerRevoked
	// PeerUpdated: revalidation found a changed configuration and applied it.
	PeerUpdated
)

func (k PeerEventKind) String() string {
	switch k {
	case PeerInstalled:
		return "installed"
	case PeerRefused:
		return "refused"
	case PeerLookupFailed:
		return "lookup failed"
	case PeerEvicted:
		return "evicted"
	case PeerRevoked:
		return "revoked"
	case PeerUpdated:
		return "updated"
	}
	return fmt.Sprintf("PeerEventKind(%d)", int(k))
}

// PeerEvent reports one change of a just-in-time peer.
type PeerEvent struct {
	Kind PeerEventKind
	Key  PublicKey
	// Latency is, for PeerInstalled, the time from the initiation's (or
	// the outbound packet's) arrival to the peer being installed;
	// otherwise zero.
	Latency time.Duration
	// Err says why, for PeerLookupFailed; otherwise nil.
	Err error
	// Reason is a short human word for PeerEvicted ("idle", "cap") and
	// PeerRevoked ("revalidation", "removed"); for PeerInstalled it is
	// "outbound" when a packet to the peer's address installed it,
	// "restored" when a restart reinstalled it from the state file, else
	// empty.
	Reason string
}

// OnPeerEvent is notified of just-in-time peer changes. It is called on a
// device goroutine after the change took effect; it must not block for
// long and must not call into the device. nil does nothing.
type OnPeerEvent func(PeerEvent)
