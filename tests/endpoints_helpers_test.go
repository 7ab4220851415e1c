package tests

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"wghooks/device"
	"wghooks/hooks"
	"wghooks/internal/udprelay"
)

// Helpers of the endpoint tests: a resolver the test controls, UDP relays
// that stand for the addresses of one server (each can be cut), and a
// client/server pair.

// epResolver answers every name with the addresses the test sets.
type epResolver struct {
	mu    sync.Mutex
	addrs []netip.Addr
	ttl   time.Duration
	err   error
	hang  bool // block until the context ends
	calls atomic.Int32
	last  time.Time // when Resolve was last called
}

func (r *epResolver) set(ttl time.Duration, addrs ...string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ttl, r.addrs, r.err = ttl, nil, nil
	for _, a := range addrs {
		r.addrs = append(r.addrs, netip.MustParseAddr(a))
	}
}

func (r *epResolver) lastCall() time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.last
}

func (r *epResolver) Resolve(ctx context.Context, host string) (hooks.Answer, error) {
	r.calls.Add(1)
	r.mu.Lock()
	r.last = time.Now()
	hang, err := r.hang, r.err
	ans := hooks.Answer{Addrs: append([]netip.Addr(nil), r.addrs...), TTL: r.ttl}
	r.mu.Unlock()
	if hang {
		<-ctx.Done()
		return hooks.Answer{}, ctx.Err()
	}
	return ans, err
}

// epPair is a wghooks client whose peer is a server known by a hostname.
type epPair struct {
	client, server *node
	dc, ds         *device.Device
	res            *epResolver
	port           uint16
	relays         map[string]*udprelay.Relay
	host           string
	clientLog      *epLog
	serverPk       [32]byte
}

// epLog collects a device's log lines, for failure messages.
type epLog struct {
	mu    sync.Mutex
	lines []string
	t     *testing.T
}

func (l *epLog) logf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, time.Now().Format("15:04:05.000 ")+fmt.Sprintf(format, args...))
}

func (l *epLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}

// newEpPair starts a server and relays on addrs (dead ones cut), and a
// client with cfg whose resolver answers the relay addresses. The client
// gets the server as a peer with wghooks_endpoint=vpn.test:PORT.
func newEpPair(t *testing.T, cfg device.Config, addrs []string, dead ...string) *epPair {
	t.Helper()
	p := &epPair{res: &epResolver{}, host: "vpn.test", clientLog: &epLog{t: t}}
	serverLog := &epLog{t: t}
	p.server, p.ds = newWghooksNode(t, "198.18.40.1", device.Config{Verbosef: serverLog.logf, Errorf: serverLog.logf})
	p.serverPk = p.server.key.pub
	// A server has a fixed port (the relays point at it); a random one
	// would let flow escape move it.
	if err := p.ds.IpcSet(uapiCfg("listen_port", fmt.Sprint(p.server.port))); err != nil {
		t.Fatal(err)
	}
	var err error
	p.port, p.relays, err = udprelay.Start(netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), p.server.port), addrs, dead...)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range p.relays {
		t.Cleanup(r.Close)
	}
	p.res.set(time.Hour, addrs...)
	if cfg.Endpoints.Resolver == nil {
		cfg.Endpoints.Resolver = p.res
	}
	cfg.Verbosef = p.clientLog.logf
	cfg.Errorf = p.clientLog.logf
	p.client, p.dc = newWghooksNode(t, "198.18.40.2", cfg)
	t.Cleanup(func() {
		if t.Failed() || os.Getenv("EPDEBUG") != "" {
			t.Logf("client log:\n%s", p.clientLog)
			t.Logf("server log:\n%s", serverLog)
			for a, r := range p.relays {
				t.Logf("relay %s: %d in, %d out", a, r.In(), r.Out())
			}
		}
	})
	peerWith(t, p.ds, p.client, false)
	if err := p.dc.IpcSet(uapiCfg(
		"public_key", p.server.key.pubHex(),
		"allowed_ip", "198.18.40.1/32",
		"wghooks_endpoint", fmt.Sprintf("%s:%d", p.host, p.port),
	)); err != nil {
		t.Fatal(err)
	}
	return p
}

// endpointOf returns the endpoint= value of peer pk in d's get reply.
func endpointOf(t *testing.T, d ipcGetter, pk [32]byte) string {
	t.Helper()
	return peerValue(t, d, pk, "endpoint")
}

// peerValue returns the first value of key in peer pk's section of a get
// reply.
func peerValue(t *testing.T, d ipcGetter, pk [32]byte, key string) string {
	t.Helper()
	get, err := d.IpcGet()
	if err != nil {
		t.Fatal(err)
	}
	in := false
	for _, l := range strings.Split(get, "\n") {
		k, v, _ := strings.Cut(l, "=")
		if k == "public_key" {
			in = v == hex.EncodeToString(pk[:])
			continue
		}
		if in && k == key {
			return v
		}
	}
	return ""
}

// relayAddr is "ip:port" of relay address a, as `wg show` would print it.
func (p *epPair) relayAddr(a string) string {
	return netip.AddrPortFrom(netip.MustParseAddr(a), p.port).String()
}

// pingUntil pings every interval until one reply comes or timeout passes,
// and returns when the first reply came.
func pingUntil(t *testing.T, from *node, to netip.Addr, interval, timeout time.Duration) (time.Duration, error) {
	t.Helper()
	start := time.Now()
	for time.Since(start) < timeout {
		if err := ping(t, from, to, interval); err == nil {
			return time.Since(start), nil
		}
	}
	return 0, errors.New("no ping reply")
}

// epPinger sends numbered ICMP echoes through the tunnel on one socket and
// records which were answered, so a test can count losses exactly (late
// replies count as answered).
type epPinger struct {
	c    net.Conn
	mu   sync.Mutex
	sent map[uint16]time.Time
	got  map[uint16]time.Time
	seq  uint16
	done chan struct{}
}

func newEpPinger(t *testing.T, from *node, to netip.Addr) *epPinger {
	t.Helper()
	c, err := from.net.DialPingAddr(netip.Addr{}, to)
	if err != nil {
		t.Fatal(err)
	}
	p := &epPinger{c: c, sent: map[uint16]time.Time{}, got: map[uint16]time.Time{}, done: make(chan struct{})}
	go func() {
		defer close(p.done)
		buf := make([]byte, 1500)
		for {
			n, err := c.Read(buf)
			if err != nil {
				return
			}
			if n >= 8 && buf[0] == 0 {
				seq := uint16(buf[6])<<8 | uint16(buf[7])
				p.mu.Lock()
				if _, ok := p.got[seq]; !ok {
					p.got[seq] = time.Now()
				}
				p.mu.Unlock()
			}
		}
	}()
	t.Cleanup(func() { c.Close(); <-p.done })
	return p
}

// send sends the next echo and returns its sequence number.
func (p *epPinger) send() uint16 {
	p.mu.Lock()
	p.seq++
	seq := p.seq
	p.sent[seq] = time.Now()
	p.mu.Unlock()
	p.c.Write([]byte{8, 0, 0, 0, 0x77, 0x67, byte(seq >> 8), byte(seq), 'w', 'g'})
	return seq
}

// answered reports whether echo seq was answered.
func (p *epPinger) answered(seq uint16) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	_, ok := p.got[seq]
	return ok
}

// lost counts echoes sent more than grace ago that are unanswered.
func (p *epPinger) lost(grace time.Duration) (lost, sent int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for seq, at := range p.sent {
		if time.Since(at) < grace {
			continue
		}
		sent++
		if _, ok := p.got[seq]; !ok {
			lost++
		}
	}
	return lost, sent
}

// firstAnsweredAfter returns when the first echo sent at or after t was
// answered, relative to t.
func (p *epPinger) firstAnsweredAfter(t time.Time) (time.Duration, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	best := time.Duration(-1)
	for seq, at := range p.sent {
		if at.Before(t) {
			continue
		}
		if g, ok := p.got[seq]; ok && (best < 0 || g.Sub(t) < best) {
			best = g.Sub(t)
		}
	}
	return best, best >= 0
}
