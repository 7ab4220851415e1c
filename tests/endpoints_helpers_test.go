package tests

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wghooks/wghooks/device"
	"github.com/wghooks/wghooks/hooks"
	"github.com/wghooks/wghooks/internal/testkit"
	"github.com/wghooks/wghooks/internal/udprelay"
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
	client, server *testkit.Node
	dc, ds         *device.Device
	res            *epResolver
	port           uint16
	relays         map[string]*udprelay.Relay
	host           string
	clientLog      *testkit.Log
	serverPk       [32]byte
}

// newEpPair starts a server and relays on addrs (dead ones cut), and a
// client with cfg whose resolver answers the relay addresses. The client
// gets the server as a peer with wghooks_endpoint=vpn.test:PORT.
func newEpPair(t *testing.T, cfg device.Config, addrs []string, dead ...string) *epPair {
	t.Helper()
	p := &epPair{res: &epResolver{}, host: "vpn.test", clientLog: testkit.NewLog(nil, "client")}
	serverLog := testkit.NewLog(nil, "server")
	p.server, p.ds = testkit.NewWghooks(t, "198.18.40.1", device.Config{Verbosef: serverLog.Logf, Errorf: serverLog.Logf})
	p.serverPk = p.server.Key.Pub
	// A server has a fixed port (the relays point at it); a random one
	// would let flow escape move it.
	if err := p.ds.IpcSet(testkit.UAPI("listen_port", fmt.Sprint(p.server.Port))); err != nil {
		t.Fatal(err)
	}
	var err error
	p.port, p.relays, err = udprelay.Start(netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), p.server.Port), addrs, dead...)
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
	cfg.Verbosef = p.clientLog.Logf
	cfg.Errorf = p.clientLog.Logf
	p.client, p.dc = testkit.NewWghooks(t, "198.18.40.2", cfg)
	t.Cleanup(func() {
		if t.Failed() || os.Getenv("EPDEBUG") != "" {
			t.Logf("client log:\n%s", p.clientLog)
			t.Logf("server log:\n%s", serverLog)
			for a, r := range p.relays {
				t.Logf("relay %s: %d in, %d out", a, r.In(), r.Out())
			}
		}
	})
	testkit.AddPeer(t, p.ds, p.client, false)
	if err := p.dc.IpcSet(testkit.UAPI(
		"public_key", p.server.Key.PubHex(),
		"allowed_ip", "198.18.40.1/32",
		"wghooks_endpoint", fmt.Sprintf("%s:%d", p.host, p.port),
	)); err != nil {
		t.Fatal(err)
	}
	return p
}

// relayAddr is "ip:port" of relay address a, as `wg show` would print it.
func (p *epPair) relayAddr(a string) string {
	return netip.AddrPortFrom(netip.MustParseAddr(a), p.port).String()
}
