package floodgen

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/curve25519"
	wgconn "golang.zx2c4.com/wireguard/conn"
	"golang.zx2c4.com/wireguard/tai64n"

	"github.com/wghooks/wghooks/conn"
)

func newKey(t *testing.T) (priv, pub [32]byte) {
	t.Helper()
	rand.Read(priv[:])
	p, err := curve25519.X25519(priv[:], curve25519.Basepoint)
	if err != nil {
		t.Fatal(err)
	}
	return priv, [32]byte(p)
}

// target is a UDP socket standing in for a device: it sorts what it
// receives by kind, answers each source's first packet with a
// cookie-reply-shaped datagram, and one source also with something else.
type target struct {
	c      *net.UDPConn
	id     *conn.Identity
	replay []byte
	done   chan struct{}

	mu         sync.Mutex
	byKind     [NumKinds]int64
	sources    map[netip.AddrPort]bool
	initiators map[[32]byte]bool // strangers' keys
}

func newTarget(t *testing.T, network, addr string, priv [32]byte, replay []byte) *target {
	t.Helper()
	c, err := net.ListenUDP(network, net.UDPAddrFromAddrPort(netip.MustParseAddrPort(addr)))
	if err != nil {
		t.Skipf("no %s loopback here: %v", network, err)
	}
	if priv == ([32]byte{}) {
		priv, _ = newKey(t)
	}
	id, err := conn.NewIdentity(priv)
	if err != nil {
		t.Fatal(err)
	}
	tg := &target{c: c, id: id, replay: replay, done: make(chan struct{}),
		sources: map[netip.AddrPort]bool{}, initiators: map[[32]byte]bool{}}
	go tg.serve()
	t.Cleanup(func() { c.Close(); <-tg.done })
	return tg
}

func (tg *target) addr() netip.AddrPort { return tg.c.LocalAddr().(*net.UDPAddr).AddrPort() }

func (tg *target) serve() {
	defer close(tg.done)
	buf := make([]byte, 2048)
	for {
		n, from, err := tg.c.ReadFromUDPAddrPort(buf)
		if err != nil {
			return
		}
		pkt := buf[:n]
		kind := Random
		switch in, err := tg.id.Decode(pkt); {
		case bytes.Equal(pkt, tg.replay):
			kind = Replay
		case err == nil:
			kind = Stranger
			tg.mu.Lock()
			tg.initiators[in.Initiator] = true
			tg.mu.Unlock()
		case !errors.Is(err, conn.ErrNotInitiation) && !errors.Is(err, conn.ErrBadMAC1):
			kind = Garbage
		}
		tg.mu.Lock()
		tg.byKind[kind]++
		first := !tg.sources[from]
		tg.sources[from] = true
		other := len(tg.sources) == 1
		tg.mu.Unlock()
		if first {
			reply := make([]byte, conn.MessageCookieReplySize)
			reply[0] = conn.MessageCookieReply
			tg.c.WriteToUDPAddrPort(reply, from)
			if other {
				tg.c.WriteToUDPAddrPort(make([]byte, 92), from)
			}
		}
	}
}

// settle waits until the target has received want packets or a second
// passed without any.
func (tg *target) settle(want int64) {
	last, lastChange := int64(-1), time.Now()
	for time.Since(lastChange) < time.Second {
		tg.mu.Lock()
		var n int64
		for _, k := range tg.byKind {
			n += k
		}
		tg.mu.Unlock()
		if n >= want {
			return
		}
		if n != last {
			last, lastChange = n, time.Now()
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestRunSendsEveryKind floods a local socket briefly from several
// sources and checks that every kind arrived as what it claims to be,
// from the promised addresses, and that the answers were counted.
func TestRunSendsEveryKind(t *testing.T) {
	for _, tc := range []struct{ network, addr string }{{"udp4", "127.0.0.1:0"}, {"udp6", "[::1]:0"}} {
		t.Run(tc.network, func(t *testing.T) {
			serverPriv, serverPub := newKey(t)
			knownPriv, _ := newKey(t)
			var eph [32]byte
			rand.Read(eph[:])
			replay, err := conn.SealInitiation(knownPriv, serverPub, eph, 7, tai64n.Now())
			if err != nil {
				t.Fatal(err)
			}
			tg := newTarget(t, tc.network, tc.addr, serverPriv, replay)

			f := Flood{
				Target:    tg.addr(),
				ServerPub: tg.id.PublicKey(),
				Replay:    replay,
				Strangers: 3,
				Sources:   4,
				PPS:       2000,
				Duration:  300 * time.Millisecond,
			}
			res, err := f.Run(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			tg.settle(res.Sent)
			tg.mu.Lock()
			t.Logf("%v by kind %v in %v; the target got %v", res, res.ByKind, res.Elapsed, tg.byKind)
			tg.mu.Unlock()

			var sum int64
			for _, n := range res.ByKind {
				sum += n
			}
			if sum != res.Sent || res.Sent == 0 || res.Sent > 600 {
				t.Errorf("sent %d (by kind %v), want 1 to 600 (2000/s for 0.3 s), the sum of the kinds", res.Sent, res.ByKind)
			}
			tg.mu.Lock()
			defer tg.mu.Unlock()
			for k := Kind(0); k < NumKinds; k++ {
				if res.ByKind[k] == 0 || tg.byKind[k] == 0 || tg.byKind[k] > res.ByKind[k] {
					t.Errorf("%v: sent %d, the target recognised %d: want some, no more than sent", k, res.ByKind[k], tg.byKind[k])
				}
			}
			if len(tg.initiators) == 0 || len(tg.initiators) > f.Strangers {
				t.Errorf("genuine initiations came from %d keys, want 1 to %d", len(tg.initiators), f.Strangers)
			}
			addrs := map[netip.AddrPort]bool{}
			for src := range tg.sources {
				addrs[src] = true
				if want := SourceAddr(tg.addr().Addr(), 0); tc.network == "udp6" && src.Addr() != want {
					t.Errorf("packet from %v, want %v", src, want)
				}
			}
			if len(addrs) != f.Sources {
				t.Errorf("packets came from %d sources (%v), want %d", len(addrs), addrs, f.Sources)
			}
			if tc.network == "udp4" {
				for i := 0; i < f.Sources; i++ {
					found := false
					for src := range addrs {
						found = found || src.Addr() == SourceAddr(tg.addr().Addr(), i)
					}
					if !found {
						t.Errorf("nothing came from source %v", SourceAddr(tg.addr().Addr(), i))
					}
				}
			}
			if res.Cookies != int64(f.Sources) || res.Other != 1 {
				t.Errorf("flood counted %d cookie replies and %d other answers, want %d and 1", res.Cookies, res.Other, f.Sources)
			}
		})
	}
}

// TestRunStopsAtMaxPackets: the count bound ends the flood before its
// time does.
func TestRunStopsAtMaxPackets(t *testing.T) {
	tg := newTarget(t, "udp4", "127.0.0.1:0", [32]byte{}, nil)
	res, err := Flood{Target: tg.addr(), ServerPub: tg.id.PublicKey(), Sources: 3, PPS: 100_000,
		Duration: time.Minute, MaxPackets: 100}.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if res.Sent != 100 {
		t.Errorf("sent %d packets, want exactly MaxPackets (100)", res.Sent)
	}
	if res.ByKind[Stranger] != 0 || res.ByKind[Replay] != 0 {
		t.Errorf("sent %d strangers' and %d replayed initiations with neither set up", res.ByKind[Stranger], res.ByKind[Replay])
	}
	if res.Elapsed >= time.Minute {
		t.Errorf("flood ran its whole minute instead of stopping at 100 packets")
	}
}

// TestRunStopsWithContext: cancelling the context ends a long flood
// early, and Run says so.
func TestRunStopsWithContext(t *testing.T) {
	tg := newTarget(t, "udp4", "127.0.0.1:0", [32]byte{}, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	var res Result
	go func() {
		var err error
		res, err = Flood{Target: tg.addr(), ServerPub: tg.id.PublicKey(), PPS: 1000, Duration: time.Minute}.Run(ctx)
		done <- err
	}()
	deadline := time.Now().Add(10 * time.Second)
	for {
		tg.mu.Lock()
		got := tg.byKind[Random] + tg.byKind[Garbage]
		tg.mu.Unlock()
		if got > 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Run returned %v, want context.Canceled", err)
		}
		if res.Sent == 0 {
			t.Errorf("a cancelled flood reported no packets sent")
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return after its context was cancelled")
	}
}

// TestRunSpoofs: with Spoof set, every packet arrives from the spoofed
// address and port, whole, and in the number sent.
func TestRunSpoofs(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("spoofing needs a raw socket (root)")
	}
	priv, pub := newKey(t)
	replay := bytes.Repeat([]byte{7}, conn.MessageInitiationSize)
	tg := newTarget(t, "udp4", "127.0.0.1:0", priv, replay)
	victim := netip.MustParseAddrPort("127.0.0.1:4242")
	res, err := Flood{Target: tg.addr(), ServerPub: pub, Replay: replay, Strangers: 2, Sources: 2, PPS: 2000,
		Duration: 200 * time.Millisecond, Spoof: victim}.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	tg.settle(res.Sent)
	tg.mu.Lock()
	defer tg.mu.Unlock()
	if len(tg.sources) != 1 || !tg.sources[victim] {
		t.Errorf("packets came from %v, want only %v", tg.sources, victim)
	}
	// As for unspoofed floods, the target's socket may drop some under
	// the race detector; none may be mistaken for another kind.
	for k := Kind(0); k < NumKinds; k++ {
		if res.ByKind[k] == 0 || tg.byKind[k] == 0 || tg.byKind[k] > res.ByKind[k] {
			t.Errorf("%v: sent %d, the target recognised %d: want some, no more than sent", k, res.ByKind[k], tg.byKind[k])
		}
	}
	if res.Cookies != 0 || res.Other != 0 {
		t.Errorf("a spoofed flood counted %d cookies and %d other answers: answers go to the spoofed address", res.Cookies, res.Other)
	}
}

// TestRunRefuses: targets that are not loopback are refused with
// ErrNotLoopback, and unbounded or empty floods with a clear error;
// nothing is sent.
func TestRunRefuses(t *testing.T) {
	_, pub := newKey(t)
	ok := Flood{Target: netip.MustParseAddrPort("127.0.0.1:9"), ServerPub: pub, PPS: 10, Duration: time.Millisecond}
	for _, target := range []string{"198.18.0.1:51820", "[fd00::1]:51820", "0.0.0.0:51820", "[::]:51820", "[::ffff:198.18.0.1]:51820", "192.168.1.1:53"} {
		f := ok
		f.Target = netip.MustParseAddrPort(target)
		_, err := f.Run(context.Background())
		if !errors.Is(err, ErrNotLoopback) || !strings.Contains(err.Error(), `"`+f.Target.String()+`"`) {
			t.Errorf("flood of %s: got %v, want an error quoting the target and matching ErrNotLoopback", target, err)
		}
	}
	bad := map[string]func(*Flood){
		"no port":         func(f *Flood) { f.Target = netip.MustParseAddrPort("127.0.0.1:0") },
		"no key":          func(f *Flood) { f.ServerPub = [32]byte{} },
		"no rate":         func(f *Flood) { f.PPS = 0 },
		"no duration":     func(f *Flood) { f.Duration = 0 },
		"too many":        func(f *Flood) { f.Sources = MaxSources + 1 },
		"negative bounds": func(f *Flood) { f.MaxPackets = -1 },
		"spoof, no port":  func(f *Flood) { f.Spoof = netip.MustParseAddrPort("127.0.0.1:0") },
	}
	for _, spoof := range []string{"198.18.0.1:51820", "[::1]:51820", "[fd00::1]:51820"} {
		f := ok
		f.Spoof = netip.MustParseAddrPort(spoof)
		if _, err := f.Run(context.Background()); !errors.Is(err, ErrNotLoopback) || !strings.Contains(err.Error(), spoof) {
			t.Errorf("flood spoofing %s: got %v, want an error quoting it and matching ErrNotLoopback", spoof, err)
		}
	}
	for name, change := range bad {
		f := ok
		change(&f)
		if _, err := f.Run(context.Background()); err == nil || errors.Is(err, ErrNotLoopback) || !strings.HasPrefix(err.Error(), "failed to flood ") {
			t.Errorf("%s: got %v, want a \"failed to flood\" error", name, err)
		}
	}
}

// TestRecorder: the recorder keeps the first initiation sent, counts
// initiations sent and cookie replies received, and passes everything
// through.
func TestRecorder(t *testing.T) {
	peer, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	r := NewRecorder(wgconn.NewDefaultBind())
	fns, port, err := r.Open(0)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ep, err := r.ParseEndpoint(peer.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	first, second := make([]byte, conn.MessageInitiationSize), make([]byte, conn.MessageInitiationSize)
	first[0], second[0], second[1] = conn.MessageInitiation, conn.MessageInitiation, 1
	data := []byte{conn.MessageTransport, 0, 0, 0}
	for _, pkt := range [][]byte{first, data, second} {
		if err := r.Send([][]byte{pkt}, ep); err != nil {
			t.Fatal(err)
		}
	}
	// The peer got all three; it answers with a cookie reply and data.
	peer.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 256)
	for i := 0; i < 3; i++ {
		if _, err := peer.Read(buf); err != nil {
			t.Fatalf("peer received %d of 3 datagrams: %v", i, err)
		}
	}
	to := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: int(port)}
	cookie := make([]byte, conn.MessageCookieReplySize)
	cookie[0] = conn.MessageCookieReply
	for _, pkt := range [][]byte{cookie, data} {
		if _, err := peer.WriteToUDP(pkt, to); err != nil {
			t.Fatal(err)
		}
	}
	got := 0
	bufs := make([][]byte, r.BatchSize())
	for i := range bufs {
		bufs[i] = make([]byte, 2048)
	}
	sizes, eps := make([]int, len(bufs)), make([]wgconn.Endpoint, len(bufs))
	for got < 2 {
		n, err := fns[0](bufs, sizes, eps)
		if err != nil {
			t.Fatal(err)
		}
		got += n
	}
	if !bytes.Equal(r.FirstInitiation(), first) || r.Initiations() != 2 || r.CookieReplies() != 1 {
		t.Errorf("recorded the first initiation: %v; %d initiations, %d cookie replies; want true, 2, 1",
			bytes.Equal(r.FirstInitiation(), first), r.Initiations(), r.CookieReplies())
	}
}
