package device

import (
	"encoding/hex"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"golang.org/x/crypto/curve25519"
	wgdevice "golang.zx2c4.com/wireguard/device"
)

// This file is the one reader of upstream's runtime state (endpoints,
// handshakes, byte counters), which upstream exposes only through its get
// reply. Features read it here when something happens (a drain, a sweep,
// a silent flow, a source reset), never per packet.

// peerView is one peer as upstream reports it.
type peerView struct {
	pk        wgdevice.NoisePublicKey
	endpoint  string         // normalized (IPv4 unmapped); "" when none
	addr      netip.AddrPort // the endpoint as upstream reports it; invalid when none
	handshake time.Time      // zero when none in this process
	rx, tx    uint64
}

// deviceView is the upstream device's state, read through IpcGet (about
// 30 ms at 10k peers, so only on drain, exit, broadcasts and timers,
// never per packet).
type deviceView struct {
	privateKey [32]byte
	peers      []peerView
}

// publicKey derives the device's public key; ok is false without a
// private key.
func (v *deviceView) publicKey() (pub wgdevice.NoisePublicKey, ok bool) {
	if v.privateKey == [32]byte{} {
		return pub, false
	}
	p, err := curve25519.X25519(v.privateKey[:], curve25519.Basepoint)
	if err != nil {
		return pub, false
	}
	copy(pub[:], p)
	return pub, true
}

func (d *Device) view() (deviceView, error) {
	var b strings.Builder
	if err := d.wg.IpcGetOperation(&b); err != nil {
		return deviceView{}, fmt.Errorf("failed to read device state: %w", err)
	}
	return parseView(b.String()), nil
}

// parseView reads upstream's get reply. It is pure.
func parseView(get string) deviceView {
	var v deviceView
	var cur *peerView
	var sec, nsec int64
	flush := func() {
		if cur != nil && (sec != 0 || nsec != 0) {
			cur.handshake = time.Unix(sec, nsec)
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
			v.peers = append(v.peers, peerView{})
			cur = &v.peers[len(v.peers)-1]
			copy(cur.pk[:], k)
		case cur == nil:
			if key == "private_key" {
				if k, err := hex.DecodeString(value); err == nil && len(k) == 32 {
					copy(v.privateKey[:], k)
				}
			}
		case key == "endpoint":
			cur.endpoint = normalizeEndpoint(value)
			cur.addr, _ = netip.ParseAddrPort(value)
		case key == "last_handshake_time_sec":
			sec, _ = strconv.ParseInt(value, 10, 64)
		case key == "last_handshake_time_nsec":
			nsec, _ = strconv.ParseInt(value, 10, 64)
		case key == "rx_bytes":
			cur.rx, _ = strconv.ParseUint(value, 10, 64)
		case key == "tx_bytes":
			cur.tx, _ = strconv.ParseUint(value, 10, 64)
		}
	}
	flush()
	return v
}

// byPeer maps each peer with an endpoint to it.
func (v *deviceView) byPeer() map[wgdevice.NoisePublicKey]netip.AddrPort {
	out := make(map[wgdevice.NoisePublicKey]netip.AddrPort, len(v.peers))
	for _, p := range v.peers {
		if p.addr.IsValid() {
			out[p.pk] = p.addr
		}
	}
	return out
}

// byEndpoint maps each endpoint to the peers behind it, in reply order.
func (v *deviceView) byEndpoint() map[netip.AddrPort][]wgdevice.NoisePublicKey {
	out := make(map[netip.AddrPort][]wgdevice.NoisePublicKey)
	for _, p := range v.peers {
		if p.addr.IsValid() {
			out[p.addr] = append(out[p.addr], p.pk)
		}
	}
	return out
}
