package feature

import (
	"bytes"
	"encoding/hex"
	"net/netip"
	"strconv"
	"time"

	"golang.org/x/crypto/curve25519"
)

// This file reads upstream's runtime state (endpoints, handshakes, byte
// counters), which upstream exposes only through its get reply. Features
// read it through Host.View when something happens (a drain, a sweep, a
// silent flow, a source reset), never per packet.

// PeerView is one peer as upstream reports it.
type PeerView struct {
	PublicKey  Key
	Endpoint   string         // normalized (IPv4 unmapped); "" when none
	Addr       netip.AddrPort // the endpoint as upstream reports it; invalid when none
	Handshake  time.Time      // zero when none in this process
	Rx, Tx     uint64
	AllowedIPs []netip.Prefix // in upstream's order; shares a backing array with the other peers'
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
	var r ViewReader
	r.Write([]byte(get))
	return r.View()
}

// ViewReader reads upstream's get reply as upstream writes it (an
// io.Writer for IpcGetOperation: no copy of the whole reply, any split of
// the writes). Preshared keys are skipped as they stream by.
type ViewReader struct {
	// Keep, when set, selects the peers to read; the others are skipped.
	Keep func(Key) bool

	partial  []byte // a line split across writes
	v        View
	cur      int      // index of the peer being read in v.Peers; -1: none
	spans    [][2]int // v.Peers[i]'s window of prefixes
	prefixes []netip.Prefix
	sec      int64
	nsec     int64
	started  bool
}

// Write reads the next part of the reply.
func (r *ViewReader) Write(b []byte) (int, error) {
	if !r.started {
		r.started, r.cur = true, -1
	}
	n := len(b)
	if len(r.partial) > 0 {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			r.partial = append(r.partial, b...)
			return n, nil
		}
		r.partial = append(r.partial, b[:i]...)
		r.line(r.partial)
		r.partial = r.partial[:0]
		b = b[i+1:]
	}
	for {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			break
		}
		r.line(b[:i])
		b = b[i+1:]
	}
	r.partial = append(r.partial, b...)
	return n, nil
}

// View reads what is left and returns the state.
func (r *ViewReader) View() View {
	if !r.started {
		r.started, r.cur = true, -1
	}
	r.line(r.partial)
	r.partial = r.partial[:0]
	r.flush()
	// Each peer's prefixes are a window of one array, set once it is
	// complete (appends may have moved it).
	for i := range r.v.Peers {
		r.v.Peers[i].AllowedIPs = r.prefixes[r.spans[i][0]:r.spans[i][1]:r.spans[i][1]]
	}
	return r.v
}

// flush ends the current peer.
func (r *ViewReader) flush() {
	if r.cur >= 0 {
		if r.sec != 0 || r.nsec != 0 {
			r.v.Peers[r.cur].Handshake = time.Unix(r.sec, r.nsec)
		}
		r.spans[r.cur][1] = len(r.prefixes)
	}
	r.cur, r.sec, r.nsec = -1, 0, 0
}

func (r *ViewReader) line(l []byte) {
	key, value, ok := bytes.Cut(l, []byte{'='})
	if !ok {
		return
	}
	if string(key) == "public_key" {
		r.flush()
		var k Key
		if n, err := hex.Decode(k[:], value); err != nil || n != len(k) || (r.Keep != nil && !r.Keep(k)) {
			return
		}
		r.v.Peers = append(r.v.Peers, PeerView{PublicKey: k})
		r.spans = append(r.spans, [2]int{len(r.prefixes), len(r.prefixes)})
		r.cur = len(r.v.Peers) - 1
		return
	}
	if r.cur < 0 {
		if string(key) == "private_key" && len(r.v.Peers) == 0 {
			var k [32]byte
			if n, err := hex.Decode(k[:], value); err == nil && n == len(k) {
				r.v.PrivateKey = k
			}
		}
		return
	}
	p := &r.v.Peers[r.cur]
	switch string(key) {
	case "endpoint":
		p.Endpoint = NormalizeEndpoint(string(value))
		p.Addr, _ = netip.ParseAddrPort(string(value))
	case "last_handshake_time_sec":
		r.sec, _ = strconv.ParseInt(string(value), 10, 64)
	case "last_handshake_time_nsec":
		r.nsec, _ = strconv.ParseInt(string(value), 10, 64)
	case "rx_bytes":
		p.Rx, _ = strconv.ParseUint(string(value), 10, 64)
	case "tx_bytes":
		p.Tx, _ = strconv.ParseUint(string(value), 10, 64)
	case "allowed_ip":
		if pfx, err := netip.ParsePrefix(string(value)); err == nil {
			r.prefixes = append(r.prefixes, pfx)
		}
	}
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
