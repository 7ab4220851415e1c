package tests

// Helpers for the fleet tests and benchmarks: gateways (in-process
// wghooks devices sharing one key) on one real PostgreSQL store, each
// with its own pool and watcher as separate machines would have, and the
// wghooks CLI run as a command against the same database.

import (
	"context"
	"encoding/hex"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wghooks/wghooks/device"
	"github.com/wghooks/wghooks/hooks"
	"github.com/wghooks/wghooks/hooks/pgstore"
	"github.com/wghooks/wghooks/internal/pgtest"
	"github.com/wghooks/wghooks/internal/testkit"
)

type fleet struct {
	srv *pgtest.Server
	url string
	key testkit.Keypair // the gateways' shared private key
	gws []*fleetGateway
}

type fleetGateway struct {
	*testkit.Node
	dev   *device.Device
	store *pgstore.Store
	log   *testkit.Log
	ev    *fleetEvents
}

// fleetEvents is jitEvents that also keeps the first event of each kind
// and key with the time it came.
type fleetEvents struct {
	jitEvents
	firstMu sync.Mutex
	first   map[fleetEventKey]fleetEvent
}

type fleetEventKey struct {
	kind hooks.PeerEventKind
	key  [32]byte
}

type fleetEvent struct {
	ev hooks.PeerEvent
	at time.Time
}

func (e *fleetEvents) on(ev hooks.PeerEvent) {
	now := time.Now()
	e.firstMu.Lock()
	if e.first == nil {
		e.first = make(map[fleetEventKey]fleetEvent)
	}
	if k := (fleetEventKey{ev.Kind, ev.Key}); e.first[k].at.IsZero() {
		e.first[k] = fleetEvent{ev, now}
	}
	e.firstMu.Unlock()
	e.jitEvents.on(ev)
}

// find returns the first event of kind for key and when it came.
func (e *fleetEvents) find(kind hooks.PeerEventKind, key [32]byte) (hooks.PeerEvent, time.Time, bool) {
	e.firstMu.Lock()
	defer e.firstMu.Unlock()
	f, ok := e.first[fleetEventKey{kind, key}]
	return f.ev, f.at, ok
}

// when is the time of the first event of kind for key (zero: none).
func (e *fleetEvents) when(kind hooks.PeerEventKind, key [32]byte) time.Time {
	_, at, _ := e.find(kind, key)
	return at
}

// latency is the Latency of the first event of kind for key.
func (e *fleetEvents) latency(kind hooks.PeerEventKind, key [32]byte) time.Duration {
	ev, _, _ := e.find(kind, key)
	return ev.Latency
}

// newFleet starts PostgreSQL, migrates it with the CLI and starts n
// gateways on it. Revalidation is an hour away: what cuts a removed peer
// within the test is the pushed change.
func newFleet(t testing.TB, n int) *fleet {
	t.Helper()
	f := &fleet{srv: pgtest.New(t), key: testkit.NewKeypair()}
	f.url = f.srv.URL("postgres")
	f.cli(t, "migrate")
	for i := 0; i < n; i++ {
		f.gws = append(f.gws, f.startGateway(t, i))
	}
	for _, g := range f.gws {
		testkit.Eventually(t, 10*time.Second, "gateway watching the store", g.store.Watching)
	}
	return f
}

func (f *fleet) startGateway(t testing.TB, i int) *fleetGateway {
	t.Helper()
	g := &fleetGateway{log: testkit.NewLog(t, "gw"+string(rune('1'+i))), ev: &fleetEvents{}}
	s, err := pgstore.Open(context.Background(), pgstore.Config{URL: f.url, Logf: g.log.Logf})
	if err != nil {
		t.Fatal(err)
	}
	g.store = s
	cfg := device.Config{
		JIT:      device.JITConfig{Provider: s, RevalidateInterval: time.Hour, OnPeerEvent: g.ev.on},
		HA:       device.HAConfig{FlowEscapeOff: true},
		Verbosef: g.log.Logf,
		Errorf:   g.log.Logf,
	}
	node, dev, err := testkit.StartWghooks("198.18.0.1", f.key, 0, cfg)
	if err != nil {
		s.Close()
		t.Fatal(err)
	}
	// Close the device (and its watcher) before the pool.
	t.Cleanup(s.Close)
	t.Cleanup(func() { dev.Close() })
	g.Node, g.dev = node, dev
	testkit.ServeEcho(t, node)
	return g
}

// cli runs `wghooks peers -db URL ARGS...` and returns its output.
func (f *fleet) cli(t testing.TB, args ...string) string {
	t.Helper()
	bin := netnsBuild(t, "github.com/wghooks/wghooks/cmd/wghooks", "wghooks")
	cmd := exec.Command(bin, append([]string{"-socket-dir", t.TempDir(), "peers", "-db", f.url}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("wghooks peers %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// holds reports whether g has the peer with pub (UAPI get, as `wg show`
// reads it).
func (g *fleetGateway) holds(t testing.TB, pub [32]byte) bool {
	t.Helper()
	get, err := g.dev.IpcGet()
	if err != nil {
		t.Fatal(err)
	}
	return strings.Contains(get, "public_key="+hex.EncodeToString(pub[:])+"\n")
}

// fleetClient is a plain upstream client with key k at addr, peered with
// gateway g.
func fleetClient(t testing.TB, k testkit.Keypair, addr string, g *fleetGateway) *jitClient {
	t.Helper()
	b := testkit.NewCountingBind(nil)
	n, d, err := testkit.StartUpstream(addr, k, 0, b, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	testkit.AddPeer(t, d, g.Node, true)
	return &jitClient{Node: n, dev: d, bind: b}
}

func b64(k [32]byte) string { return hooks.PublicKey(k).String() }
