// Package floodgen sends a bounded flood of bogus WireGuard handshake
// initiations at a loopback UDP address, and counts what comes back. It
// exists to exercise a device's flood defences in tests, benchmarks and
// the demo; it refuses any target that is not loopback.
//
// Each source address (127.0.0.2, 127.0.0.3, ... or, for an IPv6 target,
// ::1 on its own port) has its own socket and sends, in turn, every kind
// of junk the flood is set up for:
//
//   - Random: random bytes of random length, sometimes with a WireGuard
//     message type in front.
//   - Garbage: initiation-sized, type 1, a valid mac1 and garbage inside,
//     which costs a responder one X25519 before it fails.
//   - Stranger: a genuine initiation from a key the target does not know,
//     which costs it two X25519 (and a provider look-up, for a gateway
//     that installs peers just in time).
//   - Replay: a copy of a real initiation, which upstream rejects for its
//     old timestamp after the same two X25519.
package floodgen

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/crypto/curve25519"
	wgdevice "golang.zx2c4.com/wireguard/device"
	"golang.zx2c4.com/wireguard/tai64n"

	"github.com/wghooks/wghooks/conn"
)

// Kind is one kind of junk.
type Kind int

// The kinds of junk, sent in this order by every source.
const (
	Random   Kind = iota // random bytes of random length, any type byte
	Garbage              // initiation-sized, type 1, valid mac1, garbage inside
	Stranger             // genuine initiation from a key the target does not know
	Replay               // replay of Flood.Replay
	NumKinds
)

func (k Kind) String() string {
	switch k {
	case Random:
		return "random"
	case Garbage:
		return "garbage"
	case Stranger:
		return "stranger"
	case Replay:
		return "replay"
	}
	return fmt.Sprintf("kind(%d)", int(k))
}

// MaxSources bounds Flood.Sources (two goroutines and a socket each).
const MaxSources = 1024

// ErrNotLoopback is returned, wrapped, for a target that is not a
// loopback address.
var ErrNotLoopback = errors.New("target is not a loopback address")

// Flood describes one flood. Target, ServerPub, PPS and Duration are
// required.
type Flood struct {
	// Target is the device's UDP address; it must be loopback.
	Target netip.AddrPort
	// ServerPub is the device's public key, for mac1 and for sealing the
	// strangers' initiations.
	ServerPub [32]byte
	// Replay is a real initiation to replay; nil sends no replays.
	Replay []byte
	// Strangers is how many distinct unknown keys send genuine
	// initiations; 0 sends none.
	Strangers int
	// Sources is how many source addresses send, each its own socket.
	// Default 1; at most MaxSources.
	Sources int
	// PPS is the rate in packets per second, all sources together. Each
	// source sends bursts of 8 at its share of it.
	PPS int
	// Duration is how long the sources send. The flood also waits 200 ms
	// after it for late answers.
	Duration time.Duration
	// MaxPackets bounds the flood in count as well as in time. Default:
	// PPS × Duration.
	MaxPackets int64
	// Spoof, if set, is the address every packet claims to come from
	// instead of the sources' own: a peer's, to flood as it would seem
	// to. It must be IPv4 loopback, like Target, and needs CAP_NET_RAW
	// (Linux raw sockets). Answers go to it, so Result counts none.
	Spoof netip.AddrPort
}

// Result is what a flood sent and saw.
type Result struct {
	Sent   int64           // packets sent, all kinds
	ByKind [NumKinds]int64 // packets sent of each kind
	// Cookies counts cookie replies (type 3, 64 bytes) received by the
	// sources.
	Cookies int64
	// Other counts anything else received (a handshake response to junk
	// would be a bug in the target).
	Other   int64
	Elapsed time.Duration // from the first packet to the last source stopping
}

// String prints the result as the flood benchmark's child process
// reports it ("FLOOD sent=... cookies=... other=...").
func (r Result) String() string {
	return fmt.Sprintf("FLOOD sent=%d cookies=%d other=%d", r.Sent, r.Cookies, r.Other)
}

const (
	burst = 8
	// answerGrace is how long the sockets stay open after the sources
	// stop, for answers still on their way.
	answerGrace = 200 * time.Millisecond
)

// check validates f and fills in its defaults.
func (f *Flood) check() error {
	addr := f.Target.Addr().Unmap()
	switch {
	case !addr.IsLoopback():
		return fmt.Errorf("failed to flood %q: %w", f.Target, ErrNotLoopback)
	case f.Target.Port() == 0:
		return fmt.Errorf("failed to flood %q: no port", f.Target)
	case f.ServerPub == [32]byte{}:
		return fmt.Errorf("failed to flood %q: no server public key", f.Target)
	case f.PPS <= 0:
		return fmt.Errorf("failed to flood %q: rate %d packets/s is not positive", f.Target, f.PPS)
	case f.Duration <= 0:
		return fmt.Errorf("failed to flood %q: duration %v is not positive", f.Target, f.Duration)
	case f.Sources < 0 || f.Sources > MaxSources:
		return fmt.Errorf("failed to flood %q: %d sources, want 1 to %d", f.Target, f.Sources, MaxSources)
	case f.Strangers < 0:
		return fmt.Errorf("failed to flood %q: %d strangers", f.Target, f.Strangers)
	case f.MaxPackets < 0:
		return fmt.Errorf("failed to flood %q: at most %d packets", f.Target, f.MaxPackets)
	case f.Spoof.IsValid() && (!f.Spoof.Addr().Unmap().Is4() || !f.Spoof.Addr().IsLoopback() || !addr.Is4()):
		return fmt.Errorf("failed to flood %q from %q: %w (spoofing is IPv4 loopback only)", f.Target, f.Spoof, ErrNotLoopback)
	case f.Spoof.IsValid() && f.Spoof.Port() == 0:
		return fmt.Errorf("failed to flood %q from %q: no port", f.Target, f.Spoof)
	}
	if f.Spoof.IsValid() {
		f.Spoof = netip.AddrPortFrom(f.Spoof.Addr().Unmap(), f.Spoof.Port())
	}
	f.Target = netip.AddrPortFrom(addr, f.Target.Port())
	f.Sources = max(f.Sources, 1)
	if f.MaxPackets == 0 {
		f.MaxPackets = max(int64(f.Duration.Seconds()*float64(f.PPS)), 1)
	}
	return nil
}

// kinds returns the kinds f sends, in turn.
func (f *Flood) kinds() []Kind {
	ks := []Kind{Random, Garbage}
	if f.Strangers > 0 {
		ks = append(ks, Stranger)
	}
	if f.Replay != nil {
		ks = append(ks, Replay)
	}
	return ks
}

// Run floods until Duration has passed, MaxPackets are sent or ctx is
// done, then closes its sockets and waits for its goroutines. After
// Duration it waits 200 ms for late answers. If ctx ends the flood early,
// Run returns what it saw and ctx's error.
func (f Flood) Run(ctx context.Context) (Result, error) {
	if err := f.check(); err != nil {
		return Result{}, err
	}
	strangers, err := f.sealers()
	if err != nil {
		return Result{}, err
	}
	socks, err := f.dial()
	if err != nil {
		return Result{}, err
	}

	var res struct {
		budget, cookies, other atomic.Int64
		byKind                 [NumKinds]atomic.Int64
	}
	res.budget.Store(f.MaxPackets)
	kinds := f.kinds()
	perSource := max(f.PPS/len(socks), 1)
	gap := time.Duration(burst) * time.Second / time.Duration(perSource)
	begin := time.Now()
	end := begin.Add(f.Duration)
	stamp := tai64n.Now()
	var stamps atomic.Uint64

	var readers, writers sync.WaitGroup
	for i, c := range socks {
		readers.Add(1)
		go func() { // counts what the target answers
			defer readers.Done()
			buf := make([]byte, 2048)
			for {
				n, err := c.Read(buf)
				switch {
				case errors.Is(err, syscall.ECONNREFUSED):
					continue // an earlier packet found no listener
				case err != nil:
					return // closed at the end of the flood
				case n == conn.MessageCookieReplySize && buf[0] == conn.MessageCookieReply:
					res.cookies.Add(1)
				default:
					res.other.Add(1)
				}
			}
		}()
		writers.Add(1)
		go func() {
			defer writers.Done()
			rng := mrand.New(mrand.NewPCG(uint64(i), uint64(time.Now().UnixNano())))
			var gen wgdevice.CookieGenerator
			gen.Init(f.ServerPub)
			buf := make([]byte, 256)
			next := time.Now()
			for k := i; time.Now().Before(end) && ctx.Err() == nil; {
				for j := 0; j < burst; j++ {
					if res.budget.Add(-1) < 0 {
						return
					}
					kind := kinds[k%len(kinds)]
					k++
					var msg []byte
					switch kind {
					case Garbage:
						msg = buf[:conn.MessageInitiationSize]
						fill(rng, msg)
						binary.LittleEndian.PutUint32(msg, conn.MessageInitiation)
						gen.AddMacs(msg)
					case Stranger:
						ts := stamp
						binary.BigEndian.PutUint64(ts[4:], binary.BigEndian.Uint64(ts[4:])+stamps.Add(1))
						msg = strangers[rng.IntN(len(strangers))].Seal(rng.Uint32(), ts)
					case Replay:
						msg = f.Replay
					default:
						msg = buf[:1+rng.IntN(len(buf)-1)]
						fill(rng, msg)
						if len(msg) >= 4 && rng.IntN(2) == 0 {
							binary.LittleEndian.PutUint32(msg, uint32(1+rng.IntN(4)))
						}
					}
					c.Write(msg) // a refused write (no listener yet) still counts as sent
					res.byKind[kind].Add(1)
				}
				next = next.Add(gap)
				if d := min(time.Until(next), time.Until(end)); d > 0 {
					select {
					case <-time.After(d):
					case <-ctx.Done():
					}
				}
			}
		}()
	}
	stopped := make(chan struct{})
	go func() { writers.Wait(); close(stopped) }()
	select {
	case <-stopped:
	case <-ctx.Done():
		<-stopped
	}
	elapsed := time.Since(begin)
	if ctx.Err() == nil {
		select {
		case <-time.After(answerGrace):
		case <-ctx.Done():
		}
	}
	for _, c := range socks {
		c.Close()
	}
	readers.Wait()

	r := Result{Cookies: res.cookies.Load(), Other: res.other.Load(), Elapsed: elapsed}
	for k := range r.ByKind {
		r.ByKind[k] = res.byKind[k].Load()
		r.Sent += r.ByKind[k]
	}
	return r, ctx.Err()
}

// sealers prepares one initiation sealer per stranger key.
func (f *Flood) sealers() ([]*conn.Sealer, error) {
	var out []*conn.Sealer
	for i := 0; i < f.Strangers; i++ {
		var priv, eph [32]byte
		rand.Read(priv[:])
		rand.Read(eph[:])
		pub, err := curve25519.X25519(priv[:], curve25519.Basepoint)
		if err != nil {
			return nil, fmt.Errorf("failed to make stranger key %d: %w", i, err)
		}
		s, err := conn.NewSealer([32]byte(pub), priv, f.ServerPub, eph)
		if err != nil {
			return nil, fmt.Errorf("failed to seal for server key %x: %w", f.ServerPub[:4], err)
		}
		out = append(out, s)
	}
	return out, nil
}

// floodConn is one source's socket: a UDP socket connected to the
// target, or a raw one that spoofs Flood.Spoof.
type floodConn interface {
	Read([]byte) (int, error)
	Write([]byte) (int, error)
	Close() error
}

// dial opens one socket per source, connected to the target.
func (f *Flood) dial() ([]floodConn, error) {
	var socks []floodConn
	for i := 0; i < f.Sources; i++ {
		src := SourceAddr(f.Target.Addr(), i)
		var c floodConn
		var err error
		if f.Spoof.IsValid() {
			c, err = dialSpoofed(f.Spoof, f.Target)
		} else {
			c, err = net.DialUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(src, 0)), net.UDPAddrFromAddrPort(f.Target))
		}
		if err != nil {
			for _, c := range socks {
				c.Close()
			}
			return nil, fmt.Errorf("failed to open flood socket on %q: %w", src, err)
		}
		socks = append(socks, c)
	}
	return socks, nil
}

// SourceAddr returns the address source i floods from: 127.0.0.2 onwards
// for an IPv4 target, the target itself (::1) for an IPv6 one.
func SourceAddr(target netip.Addr, i int) netip.Addr {
	if target.Is6() {
		return target
	}
	return netip.AddrFrom4([4]byte{127, 0, byte((i + 2) >> 8), byte(i + 2)})
}

func fill(rng *mrand.Rand, b []byte) {
	for i := 0; i+8 <= len(b); i += 8 {
		binary.LittleEndian.PutUint64(b[i:], rng.Uint64())
	}
	for i := len(b) &^ 7; i < len(b); i++ {
		b[i] = byte(rng.Uint32())
	}
}
