package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	wgconn "golang.zx2c4.com/wireguard/conn"
	wgdevice "golang.zx2c4.com/wireguard/device"

	"github.com/wghooks/wghooks/device"
	"github.com/wghooks/wghooks/hooks"
	"github.com/wghooks/wghooks/internal/floodgen"
	"github.com/wghooks/wghooks/internal/testkit"
)

// The flood: what it sends and for how long. Upstream retransmits an
// unanswered initiation after 5 s (plus up to 1/3 s), so a newcomer that
// starts as the guard engages is in well before the flood ends.
const (
	floodPPS       = 5000
	floodSources   = 16
	floodStrangers = 64
	floodFor       = 7 * time.Second
	floodQuiet     = 1500 * time.Millisecond // the stream measured before
	floodSinkPort  = 9                       // discard
)

func sceneFlood(tl *timeline) error {
	prov := &floodProvider{peers: map[hooks.PublicKey]netip.Addr{}}
	gw, err := startNode("gateway", "198.18.40.1", testkit.Keypair{}, 0, device.Config{JIT: device.JITConfig{Provider: prov}})
	if err != nil {
		return err
	}
	defer gw.dev.Close()
	sink, err := startFloodSink(gw)
	if err != nil {
		return err
	}
	defer sink.close()

	known, err := startFloodClient("198.18.40.2", gw)
	if err != nil {
		return err
	}
	defer known.dev.Close()
	prov.add(known.Key.Pub, known.Addr)
	stream, err := known.stream(netip.AddrPortFrom(gw.Addr, floodSinkPort))
	if err != nil {
		return fmt.Errorf("known peer's stream: %w", err)
	}
	defer stream.stop()
	tl.say("just-in-time gateway on udp 127.0.0.1:%d; its provider knows one client (plain wireguard-go), which streams TCP through the tunnel", gw.Port)

	t0, b0 := time.Now(), sink.bytes.Load()
	time.Sleep(floodQuiet)
	quiet := floodRate(sink.bytes.Load()-b0, time.Since(t0))
	tl.say("no flood: the stream runs at %.1f MB/s", quiet)

	// The flood, in this process, from 127.0.0.2 and up.
	f := floodgen.Flood{
		Target:    netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), gw.Port),
		ServerPub: gw.Key.Pub,
		Replay:    known.bind.FirstInitiation(),
		Strangers: floodStrangers,
		Sources:   floodSources,
		PPS:       floodPPS,
		Duration:  floodFor,
	}
	before, knownInits := gw.dev.Stats(), known.bind.Initiations()
	lookups0 := prov.lookups.Load()
	ctx, cancel := context.WithCancel(context.Background())
	type floodOutcome struct {
		res floodgen.Result
		err error
	}
	floodDone := make(chan floodOutcome, 1)
	floodStart, fb0 := time.Now(), sink.bytes.Load()
	go func() {
		res, err := f.Run(ctx)
		floodDone <- floodOutcome{res, err}
	}()
	floodOver := false
	defer func() { // on an early return, stop the flood and wait for it
		cancel()
		if !floodOver {
			<-floodDone
		}
	}()
	tl.say("flood starts: %d bogus initiations/s from %d addresses (random bytes, garbage with a valid mac1, %d unknown keys, replays of the client's first handshake)",
		floodPPS, floodSources, floodStrangers)

	engaged := false
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if engaged = gw.dev.Stats().Flooded; engaged {
			break
		}
	}
	if !engaged {
		return errors.New("the guard did not engage within 5 s of the flood")
	}
	tl.say("guard engaged %s into the flood: new sources must show a cookie before any X25519", tl.since(floodStart))

	newcomer, err := startFloodClient("198.18.40.3", gw)
	if err != nil {
		return err
	}
	defer newcomer.dev.Close()
	prov.add(newcomer.Key.Pub, newcomer.Addr)
	type arrival struct {
		at  time.Time
		err error
	}
	in := make(chan arrival, 1)
	newcomerStart := time.Now()
	go func() {
		// Upstream holds the echo until its handshake completes. The
		// deadline leaves room for a third initiation on a slow machine.
		err := newcomer.Ping(gw.Addr, 15*time.Second)
		in <- arrival{time.Now(), err}
	}()
	tl.say("a new client, in the provider but never seen by the gateway, pings it")

	window := time.NewTimer(time.Until(floodStart.Add(floodFor)))
	defer window.Stop()
	for pending := 3; pending > 0; pending-- {
		select {
		case a := <-in:
			if a.err != nil {
				return fmt.Errorf("the new client did not get in within 15 s: %w", a.err)
			}
			when := "during the flood"
			if a.at.After(floodStart.Add(floodFor)) {
				when = "after the flood"
			}
			tl.say("new client in %s after its first ping, %s: it sent %s and got %s",
				a.at.Sub(newcomerStart).Round(time.Millisecond), when,
				floodPlural(newcomer.bind.Initiations(), "initiation"), floodPlural(newcomer.bind.CookieReplies(), "cookie reply"))
		case <-window.C:
			flooded := floodRate(sink.bytes.Load()-fb0, time.Since(floodStart))
			tl.say("known client kept %.0f%% of its throughput (%.1f -> %.1f MB/s; the flooder shares this process's %d CPUs) and needed %s",
				100*flooded/quiet, quiet, flooded, runtime.NumCPU(), floodPlural(known.bind.Initiations()-knownInits, "new handshake"))
		case o := <-floodDone:
			floodOver = true
			if o.err != nil {
				return o.err
			}
			st := gw.dev.Stats()
			tl.say("flood over: %s packets sent; the guard dropped %s initiations (%s of them replays of the client's handshake, before any X25519) and sent %s cookie replies; the flooders got %s cookie replies and %s",
				floodThousands(o.res.Sent), floodThousands(int64(st.HandshakesGuarded-before.HandshakesGuarded)),
				floodThousands(int64(st.ReplaysDropped-before.ReplaysDropped)),
				floodThousands(int64(st.CookiesSent-before.CookiesSent)), floodThousands(o.res.Cookies),
				floodPlural(o.res.Other, "other answer"))
		}
	}
	floodEnd := time.Now()
	for deadline := floodEnd.Add(10 * time.Second); gw.dev.Stats().Flooded && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	st := gw.dev.Stats()
	if st.Flooded {
		return errors.New("the guard still requires cookies 10 s after the flood")
	}
	tl.say("guard released %s later: new sources pass without a cookie again", tl.since(floodEnd))
	tl.say("gateway holds %s; the provider was asked %s during the flood (the newcomer, and unknown keys let in before the guard engaged)",
		floodPlural(int64(st.PeersActive), "peer"), floodPlural(prov.lookups.Load()-lookups0, "time"))
	return nil
}

func floodRate(n int64, d time.Duration) float64 { return float64(n) / 1e6 / d.Seconds() }

// floodPlural prints "1 thing" or "n things".
func floodPlural(n int64, thing string) string {
	if n == 1 {
		return "1 " + thing
	}
	if strings.HasSuffix(thing, "y") {
		return fmt.Sprintf("%d %sies", n, thing[:len(thing)-1])
	}
	return fmt.Sprintf("%d %ss", n, thing)
}

// floodThousands prints n with thousands separators.
func floodThousands(n int64) string {
	s := strconv.FormatInt(n, 10)
	for i := len(s) - 3; i > 0 && s[i-1] != '-'; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// floodProvider is the gateway's provider: a map of keys to tunnel
// addresses, counting lookups.
type floodProvider struct {
	mu      sync.Mutex
	peers   map[hooks.PublicKey]netip.Addr
	lookups atomic.Int64
}

func (p *floodProvider) add(key [32]byte, addr netip.Addr) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.peers[key] = addr
}

func (p *floodProvider) LookupPeer(_ context.Context, key hooks.PublicKey) (hooks.PeerConfig, error) {
	p.lookups.Add(1)
	p.mu.Lock()
	defer p.mu.Unlock()
	addr, ok := p.peers[key]
	if !ok {
		return hooks.PeerConfig{}, hooks.ErrUnknownPeer
	}
	return hooks.PeerConfig{AllowedIPs: []netip.Prefix{netip.PrefixFrom(addr, 32)}}, nil
}

// floodSink accepts TCP connections on the gateway's tunnel address and
// counts the bytes they carry.
type floodSink struct {
	ln    net.Listener
	bytes atomic.Int64
	wg    sync.WaitGroup
	mu    sync.Mutex
	conns []net.Conn
}

func startFloodSink(gw *node) (*floodSink, error) {
	ln, err := gw.Net.ListenTCPAddrPort(netip.AddrPortFrom(gw.Addr, floodSinkPort))
	if err != nil {
		return nil, err
	}
	s := &floodSink{ln: ln}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.conns = append(s.conns, c)
			s.mu.Unlock()
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				buf := make([]byte, 64<<10)
				for {
					n, err := c.Read(buf)
					s.bytes.Add(int64(n))
					if err != nil {
						return
					}
				}
			}()
		}
	}()
	return s, nil
}

func (s *floodSink) close() {
	s.ln.Close()
	s.mu.Lock()
	for _, c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

// floodClient is a plain upstream wireguard-go client of the gateway on
// netstack; its bind counts what a newcomer needs to get in.
type floodClient struct {
	*testkit.Node
	dev  *wgdevice.Device
	bind *floodgen.Recorder
}

func startFloodClient(addr string, gw *node) (*floodClient, error) {
	b := floodgen.NewRecorder(wgconn.NewDefaultBind())
	n, d, err := testkit.StartUpstream(addr, testkit.Keypair{}, 0, b, wgdevice.NewLogger(wgdevice.LogLevelSilent, ""))
	if err != nil {
		return nil, err
	}
	if err := d.IpcSet(testkit.PeerConf(gw.Node, true)); err != nil {
		d.Close()
		return nil, err
	}
	return &floodClient{Node: n, dev: d, bind: b}, nil
}

// floodStream writes to a TCP connection through the tunnel until
// stopped.
type floodStream struct {
	c    net.Conn
	done chan struct{}
}

// stream connects to the sink and keeps writing; the first handshake
// happens on the way.
func (c *floodClient) stream(to netip.AddrPort) (*floodStream, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tc, err := c.Net.DialContextTCPAddrPort(ctx, to)
	if err != nil {
		return nil, err
	}
	s := &floodStream{c: tc, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		buf := make([]byte, 32<<10)
		for {
			if _, err := tc.Write(buf); err != nil {
				return // closed by stop
			}
		}
	}()
	return s, nil
}

func (s *floodStream) stop() {
	s.c.Close()
	<-s.done
}
