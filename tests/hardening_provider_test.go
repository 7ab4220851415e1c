package tests

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wghooks/wghooks/device"
	"github.com/wghooks/wghooks/hooks"
	"github.com/wghooks/wghooks/hooks/httpprovider"
	"github.com/wghooks/wghooks/internal/testkit"
)

// hardSender is a jitSender from its own loopback source address, so
// each case has its own per-source decode budget.
func hardSender(t *testing.T, server *testkit.Node, src netip.Addr) *jitSender {
	t.Helper()
	c, err := net.DialUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(src, 0)),
		net.UDPAddrFromAddrPort(netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), server.Port)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &jitSender{c: c, server: server, ts: time.Now()}
}

// hardFailures returns the errors of the lookup-failed events for key.
func (e *jitEvents) hardFailures(key [32]byte) []error {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []error
	for _, ev := range e.evs {
		if ev.Kind == hooks.PeerLookupFailed && ev.Key == key {
			out = append(out, ev.Err)
		}
	}
	return out
}

// hardControlPlane is an HTTP control plane whose answer per key is
// scripted, and that can heal (answer properly) on demand.
type hardControlPlane struct {
	mu      sync.Mutex
	healthy bool
	peers   map[hooks.PublicKey]hooks.PeerConfig
	broken  map[hooks.PublicKey]func(w http.ResponseWriter, r *http.Request)
}

func (cp *hardControlPlane) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	cp.mu.Lock()
	healthy := cp.healthy
	var broken func(http.ResponseWriter, *http.Request)
	for k, f := range cp.broken {
		if strings.HasSuffix(r.URL.Path, "/"+k.Hex()) {
			broken = f
		}
	}
	cp.mu.Unlock()
	if !healthy && broken != nil {
		broken(w, r)
		return
	}
	httpprovider.Handler(hooks.ProviderFunc(func(_ context.Context, k hooks.PublicKey) (hooks.PeerConfig, error) {
		cp.mu.Lock()
		defer cp.mu.Unlock()
		if c, ok := cp.peers[k]; ok {
			return c, nil
		}
		return hooks.PeerConfig{}, hooks.ErrUnknownPeer
	}), "").ServeHTTP(w, r)
}

// hardRouter sends each key to its own provider.
type hardRouter struct {
	mu     sync.Mutex
	routes map[hooks.PublicKey]hooks.Provider
	calls  map[hooks.PublicKey]int
}

func (r *hardRouter) LookupPeer(ctx context.Context, k hooks.PublicKey) (hooks.PeerConfig, error) {
	r.mu.Lock()
	p := r.routes[k]
	r.calls[k]++
	r.mu.Unlock()
	if p == nil {
		return hooks.PeerConfig{}, hooks.ErrUnknownPeer
	}
	return p.LookupPeer(ctx, k)
}

// TestHardeningProviderFaults: a provider that is slow, times out (with
// or without honouring its context), errors, answers malformed or
// contradictory data over HTTP (server error, garbage, another key, an
// unusable endpoint, an answer too large, a body that stalls) or flaps
// installs nothing bad: each failure is a clear log line, an event with
// the reason and a ProviderErrors count; goroutines and heap come back;
// and every key is installed, exactly as answered, once the provider
// heals.
func TestHardeningProviderFaults(t *testing.T) {
	testkit.CheckLeaks(t)
	const timeout = 400 * time.Millisecond
	release := make(chan struct{}) // lets the provider that ignores its context return
	var healed atomic.Bool
	addr := func(i int) netip.Addr { return netip.AddrFrom4([4]byte{198, 18, 3, byte(i + 1)}) }
	good := func(i int) hooks.PeerConfig {
		return hooks.PeerConfig{AllowedIPs: []netip.Prefix{netip.PrefixFrom(addr(i), 32)}}
	}

	cp := &hardControlPlane{peers: map[hooks.PublicKey]hooks.PeerConfig{}, broken: map[hooks.PublicKey]func(http.ResponseWriter, *http.Request){}}
	cps := httptest.NewServer(cp)
	t.Cleanup(cps.Close)
	transport := &http.Transport{}
	t.Cleanup(transport.CloseIdleConnections)
	hp, err := httpprovider.New(httpprovider.Config{URL: cps.URL + "/v1/peers/{hex}", Timeout: timeout,
		Client: &http.Client{Transport: transport}})
	if err != nil {
		t.Fatal(err)
	}

	type fault struct {
		name   string
		want   string // in the failure's error text
		direct func(ctx context.Context, i int) (hooks.PeerConfig, error)
		http   func(w http.ResponseWriter, r *http.Request)
	}
	faults := []fault{
		{name: "error", want: "database is on fire", direct: func(context.Context, int) (hooks.PeerConfig, error) {
			return hooks.PeerConfig{}, errors.New("database is on fire")
		}},
		{name: "timeout", want: "deadline exceeded", direct: func(ctx context.Context, _ int) (hooks.PeerConfig, error) {
			<-ctx.Done()
			return hooks.PeerConfig{}, ctx.Err()
		}},
		{name: "ignores its context", want: "deadline exceeded", direct: func(context.Context, int) (hooks.PeerConfig, error) {
			<-release
			return hooks.PeerConfig{}, errors.New("too late")
		}},
		{name: "contradicts the key", want: "names another key", direct: func(_ context.Context, i int) (hooks.PeerConfig, error) {
			c := good(i)
			c.PublicKey = hooks.PublicKey{1}
			return c, nil
		}},
		{name: "http 500", want: "status 500", http: func(w http.ResponseWriter, _ *http.Request) {
			http.Error(w, "boom", http.StatusInternalServerError)
		}},
		{name: "http garbage", want: "failed to decode answer", http: func(w http.ResponseWriter, _ *http.Request) {
			w.Write([]byte(`{"allowed_ips":["198.18.3.1/32"`))
		}},
		{name: "http another key", want: "names another key", http: func(w http.ResponseWriter, _ *http.Request) {
			w.Write([]byte(`{"public_key":"AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=","allowed_ips":["198.18.3.9/32"]}`))
		}},
		{name: "http unusable endpoint", want: "invalid endpoint", http: func(w http.ResponseWriter, _ *http.Request) {
			w.Write([]byte(`{"allowed_ips":["198.18.3.9/32"],"endpoint":"0.0.0.0:51820"}`))
		}},
		{name: "http too large", want: "longer than", http: func(w http.ResponseWriter, _ *http.Request) {
			w.Write([]byte(`{"allowed_ips":[` + strings.Repeat(`"198.18.3.9/32",`, 8000) + `"198.18.3.9/32"]}`))
		}},
		{name: "http stalled body", want: "deadline exceeded", http: func(w http.ResponseWriter, r *http.Request) {
			w.Write([]byte(`{"allowed_ips":`))
			w.(http.Flusher).Flush()
			<-r.Context().Done()
		}},
	}

	router := &hardRouter{routes: map[hooks.PublicKey]hooks.Provider{}, calls: map[hooks.PublicKey]int{}}
	keys := make([]testkit.Keypair, len(faults))
	for i, f := range faults {
		keys[i] = testkit.NewKeypair()
		k := hooks.PublicKey(keys[i].Pub)
		if f.http != nil {
			cp.broken[k] = f.http
			cp.peers[k] = good(i)
			router.routes[k] = hp
			continue
		}
		router.routes[k] = hooks.ProviderFunc(func(ctx context.Context, _ hooks.PublicKey) (hooks.PeerConfig, error) {
			if healed.Load() {
				return good(i), nil
			}
			return f.direct(ctx, i)
		})
	}
	// A slow provider that stays within the timeout still installs.
	slow := testkit.NewKeypair()
	slowAddr := netip.MustParseAddr("198.18.3.200")
	router.routes[slow.Pub] = hooks.ProviderFunc(func(ctx context.Context, _ hooks.PublicKey) (hooks.PeerConfig, error) {
		select {
		case <-time.After(timeout / 2):
		case <-ctx.Done():
			return hooks.PeerConfig{}, ctx.Err()
		}
		return hooks.PeerConfig{AllowedIPs: []netip.Prefix{netip.PrefixFrom(slowAddr, 32)}}, nil
	})

	ev, log := &jitEvents{}, testkit.NewLog(t, "server")
	server, sd := newJITServer(t, router, device.JITConfig{
		LookupTimeout: timeout, ErrorRetry: 100 * time.Millisecond, RevalidateInterval: -1,
	}, ev, log)
	heapBefore, goroutinesBefore := hardHeap(), runtime.NumGoroutine()

	senders := make([]*jitSender, len(faults))
	for i := range faults {
		senders[i] = hardSender(t, server, netip.AddrFrom4([4]byte{127, 0, 3, byte(i + 1)}))
		senders[i].send(t, senders[i].initiation(t, keys[i]))
	}
	slowSender := hardSender(t, server, netip.MustParseAddr("127.0.3.200"))
	slowSender.send(t, slowSender.initiation(t, slow))

	for i, f := range faults {
		testkit.Eventually(t, 10*time.Second, f.name+": the lookup to fail", func() bool {
			return len(ev.hardFailures(keys[i].Pub)) > 0
		})
		errs := ev.hardFailures(keys[i].Pub)
		if err := errs[0]; !strings.Contains(err.Error(), f.want) || !strings.HasPrefix(err.Error(), "failed to ") {
			t.Errorf("%s: failure %q does not say %q", f.name, err, f.want)
		}
		if sd.HasPeer(keys[i].Pub) {
			t.Errorf("%s: peer installed from a failed lookup", f.name)
		}
	}
	testkit.Eventually(t, 5*time.Second, "the slow provider's peer to be installed", func() bool { return sd.HasPeer(slow.Pub) })
	if st := sd.Stats(); st.ProviderErrors < uint64(len(faults)) || st.PeersActive != 1 {
		t.Errorf("after the faults: ProviderErrors %d (want ≥ %d), %d peers (want only the slow one)", st.ProviderErrors, len(faults), st.PeersActive)
	}
	if n := log.Count("not installed: failed to "); n < len(faults) {
		t.Errorf("%d log lines say a peer was not installed and why, want ≥ %d", n, len(faults))
	}

	// Retried while still failing, each key is asked again only after
	// ErrorRetry, and still nothing is installed.
	for round := 0; round < 3; round++ {
		time.Sleep(150 * time.Millisecond)
		for i := range faults {
			senders[i].send(t, senders[i].initiation(t, keys[i]))
		}
	}
	for i, f := range faults {
		if sd.HasPeer(keys[i].Pub) {
			t.Errorf("%s: installed while the provider was still failing", f.name)
		}
		if n := len(ev.hardFailures(keys[i].Pub)); n > 4 {
			t.Errorf("%s: %d lookups for 4 initiations", f.name, n)
		}
	}

	// Heal: every key is installed on its next initiation, as answered.
	close(release)
	healed.Store(true)
	cp.mu.Lock()
	cp.healthy = true
	cp.mu.Unlock()
	time.Sleep(150 * time.Millisecond) // past ErrorRetry
	for i, f := range faults {
		s := senders[i]
		testkit.Eventually(t, 10*time.Second, f.name+": install once the provider heals", func() bool {
			if !sd.HasPeer(keys[i].Pub) {
				s.send(t, s.initiation(t, keys[i]))
				time.Sleep(100 * time.Millisecond)
			}
			return sd.HasPeer(keys[i].Pub)
		})
		if got := testkit.PeerValue(t, sd, keys[i].Pub, "allowed_ip"); got != netip.PrefixFrom(addr(i), 32).String() {
			t.Errorf("%s: installed with allowed_ip %q, want %s", f.name, got, netip.PrefixFrom(addr(i), 32))
		}
	}

	// Upstream runs two goroutines per peer; nothing else stays.
	transport.CloseIdleConnections()
	peers := sd.Stats().PeersActive
	testkit.Eventually(t, 10*time.Second, "goroutines and heap to come back", func() bool {
		return runtime.NumGoroutine() <= goroutinesBefore+2*peers+2 && hardHeap() < heapBefore+16<<20
	})
	t.Logf("stats %+v; goroutines %d -> %d", sd.Stats(), goroutinesBefore, runtime.NumGoroutine())
}

// TestHardeningProviderFlapping: a provider that keeps changing its mind
// (error, unknown, a configuration, another configuration) during first
// contact and revalidation leaves the peer either absent or installed
// exactly as its latest successful answer says; an answer of "unknown"
// revokes it; once the provider settles, traffic flows; goroutines do
// not accumulate.
func TestHardeningProviderFlapping(t *testing.T) {
	testkit.CheckLeaks(t)
	var calls atomic.Int64
	var settled atomic.Bool
	cfgA := hooks.PeerConfig{AllowedIPs: []netip.Prefix{netip.MustParsePrefix("198.18.1.1/32")}}
	cfgB := hooks.PeerConfig{AllowedIPs: []netip.Prefix{netip.MustParsePrefix("198.18.1.1/32"), netip.MustParsePrefix("198.18.4.0/24")}}
	flap := hooks.ProviderFunc(func(ctx context.Context, _ hooks.PublicKey) (hooks.PeerConfig, error) {
		n := calls.Add(1)
		if settled.Load() {
			return cfgA, nil
		}
		switch n % 4 {
		case 1:
			return hooks.PeerConfig{}, errors.New("control plane flapping")
		case 2:
			return cfgA, nil
		case 3:
			return cfgB, nil
		}
		return hooks.PeerConfig{}, hooks.ErrUnknownPeer
	})
	ev, log := &jitEvents{}, testkit.NewLog(t, "server")
	server, sd := newJITServer(t, flap, device.JITConfig{
		ErrorRetry: 50 * time.Millisecond, NegativeTTL: 50 * time.Millisecond, RevalidateInterval: 100 * time.Millisecond,
	}, ev, log)
	c := newJITClient(t, "198.18.1.1", server)
	goroutinesBefore := runtime.NumGoroutine()
	s := hardSender(t, server, netip.MustParseAddr("127.0.4.1"))
	k := testkit.Keypair{Priv: c.Key.Priv, Pub: c.Key.Pub}

	// Watch the peer through several flaps: whenever it is installed, its
	// allowed IPs are one of the answers, never a mix or leftovers.
	deadline := time.Now().Add(3 * time.Second)
	seen := map[string]bool{}
	for time.Now().Before(deadline) {
		if !sd.HasPeer(k.Pub) {
			s.send(t, s.initiation(t, k))
		}
		time.Sleep(60 * time.Millisecond)
		if !sd.HasPeer(k.Pub) {
			seen["absent"] = true
			continue
		}
		get, err := sd.IpcGet()
		if err != nil {
			t.Fatal(err)
		}
		ips, present := hardAllowedIPs(get, k.Pub)
		if !present {
			// Revoked between HasPeer and the get: absent, not half-installed.
			seen["absent"] = true
			continue
		}
		switch ips {
		case "198.18.1.1/32":
			seen["A"] = true
		case "198.18.1.1/32,198.18.4.0/24":
			seen["B"] = true
		case "":
			// Between the key appearing and its allowed IPs: IpcSet applies
			// one transaction atomically, so this must not happen.
			t.Fatalf("peer installed without its allowed IPs:\n%s", get)
		default:
			t.Fatalf("peer installed with allowed IPs %q, neither answer", ips)
		}
	}
	t.Logf("through %d flapping lookups the peer was %v; events: %d installed, %d updated, %d revoked, %d failed",
		calls.Load(), seen, len(hardEvents(ev, hooks.PeerInstalled)), len(hardEvents(ev, hooks.PeerUpdated)),
		len(hardEvents(ev, hooks.PeerRevoked)), len(hardEvents(ev, hooks.PeerLookupFailed)))
	if !seen["absent"] || !seen["A"] && !seen["B"] {
		t.Errorf("the flapping provider was not exercised: saw %v", seen)
	}
	if n := len(hardEvents(ev, hooks.PeerRevoked)); n == 0 {
		t.Errorf("no revocation while the provider answered unknown every 4th lookup")
	}

	// Settle: the peer ends up installed as the provider says, and the
	// real client's traffic flows.
	settled.Store(true)
	testkit.Eventually(t, 15*time.Second, "traffic once the provider settles", func() bool {
		if !sd.HasPeer(k.Pub) {
			c.rehandshake(server)
		}
		return c.Node.Echo(server.Addr, time.Second) == nil
	})
	testkit.Eventually(t, 5*time.Second, "the settled configuration", func() bool {
		get, _ := sd.IpcGet()
		ips, _ := hardAllowedIPs(get, k.Pub)
		return ips == "198.18.1.1/32"
	})
	testkit.Eventually(t, 10*time.Second, "goroutines to come back", func() bool {
		return runtime.NumGoroutine() <= goroutinesBefore+4
	})
	if n := log.Count("not installed: failed to look up"); n == 0 {
		t.Errorf("no log line for the flapping errors")
	}
}

// hardAllowedIPs returns the allowed IPs of pk in a get reply, sorted by
// appearance and joined with commas, and whether pk is in the reply.
func hardAllowedIPs(get string, pk [32]byte) (ips string, present bool) {
	in := false
	var list []string
	for _, l := range strings.Split(get, "\n") {
		k, v, _ := strings.Cut(l, "=")
		if k == "public_key" {
			in = v == fmt.Sprintf("%x", pk[:])
			present = present || in
			continue
		}
		if in && k == "allowed_ip" {
			list = append(list, v)
		}
	}
	return strings.Join(list, ","), present
}

func hardEvents(e *jitEvents, kind hooks.PeerEventKind) []hooks.PeerEvent {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []hooks.PeerEvent
	for _, ev := range e.evs {
		if ev.Kind == kind {
			out = append(out, ev)
		}
	}
	return out
}
