package feature

import (
	"encoding/hex"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"golang.org/x/crypto/curve25519"
)

// This file reads upstream's runtime state (endpoints, handshakes, byte
// counters), which upstream exposes only through its get reply. Features
// read it through Host.View when something happens (a drain, a sweep, a
// silent flow, a source reset), never per packet.

// PeerView is one peer as upstream reports it.
type PeerView struct {
	PublicKey Key
	Endpoint  string         // normalized (IPv4 unmapped); "" when none
	Addr      netip.AddrPort // the endpoint as upstream reports it; invalid when none
	Handshake time.Time      // zero when none in this process
	Rx, Tx    uint64
}

// View is the upstream device's state, read through its get reply (about
// 30 ms at 10k peers, so only on drain, exit, broadcasts and timers,
// never per packet).
type View struct {
	PrivateKey [32]byte
	Peers      []PeerView
}

// PublicKey derives the device's public key; ok is false without a
// private key.
func (v *View) PublicKey() (pub Key, ok bool) {
	if v.PrivateKey == [32]byte{} {
		return pub, false
	}
	p, err := curve25519.X25519(v.PrivateKey[:], curve25519.Basepoint)
	if err != nil {
		return pub, false
	}
	copy(pub[:], p)
	return pub, true
}

// ParseView reads upstream's get reply. It is pure.
func ParseView(get string) View {
	var v View
	var cur *PeerView
	var sec, nsec int64
	flush := func() {
		if cur != nil && (sec != 0 || nsec != 0) {
			cur.Handshake = time.Unix(sec, nsec)
		}
		sec, nsec = 0, 0
	}
	for _, line := range strings.Split(get, "\n") {
		key, value, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		switch {
		case key == "public_key":
			flush()
			k, err := hex.DecodeString(value)
			if err != nil || len(k) != 32 {
				cur = nil
				continue
			}
			v.Peers = append(v.Peers, PeerView{})
			cur = &v.Peers[len(v.Peers)-1]
			copy(cur.PublicKey[:], k)
		case cur == nil:
			if key == "private_key" {
				if k, err := hex.DecodeString(value); err == nil && len(k) == 32 {
					copy(v.PrivateKey[:], k)
				}
			}
		case key == "endpoint":
			cur.Endpoint = NormalizeEndpoint(value)
			cur.Addr, _ = netip.ParseAddrPort(value)
		case key == "last_handshake_time_sec":
			sec, _ = strconv.ParseInt(value, 10, 64)
		case key == "last_handshake_time_nsec":
			nsec, _ = strconv.ParseInt(value, 10, 64)
		case key == "rx_bytes":
			cur.Rx, _ = strconv.ParseUint(value, 10, 64)
		case key == "tx_bytes":
			cur.Tx, _ = strconv.ParseUint(value, 10, 64)
		}
	}
	flush()
	return v
}

// ByPeer maps each peer with an endpoint to it.
func (v *View) ByPeer() map[Key]netip.AddrPort {
	out := make(map[Key]netip.AddrPort, len(v.Peers))
	for _, p := range v.Peers {
		if p.Addr.IsValid() {
			out[p.PublicKey] = p.Addr
		}
	}
	return out
}

// ByEndpoint maps each endpoint to the peers behind it, in reply order.
func (v *View) ByEndpoint() map[netip.AddrPort][]Key {
	out := make(map[netip.AddrPort][]Key)
	for _, p := range v.Peers {
		if p.Addr.IsValid() {
			out[p.Addr] = append(out[p.Addr], p.PublicKey)
		}
	}
	return out
}
