package main

import (
	"encoding/hex"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	wgconn "golang.zx2c4.com/wireguard/conn"
	wgdevice "golang.zx2c4.com/wireguard/device"
	"golang.zx2c4.com/wireguard/tun/netstack"

	"wghooks/device"
	"wghooks/internal/lbsim"
	"wghooks/ops"
	"wghooks/tun"
)

func init() {
	scenes = append(scenes, scene{order: 60, name: "ha", title: "Two servers with one key behind a UDP load balancer; the backend carrying the flow dies", run: sceneHA})
}

// haPings pings a tunnel address every 100 ms and keeps the time of the
// latest reply.
type haPings struct {
	mu   sync.Mutex
	last time.Time
	stop chan struct{}
	done chan struct{}
}

func startHAPings(ping func(netip.Addr, time.Duration) error, to netip.Addr) *haPings {
	p := &haPings{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(p.done)
		for i := 0; i < 100000; i++ { // bounded: stopped when the scene ends
			select {
			case <-p.stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
			if ping(to, 400*time.Millisecond) == nil {
				p.mu.Lock()
				p.last = time.Now()
				p.mu.Unlock()
			}
		}
	}()
	return p
}

func (p *haPings) lastReply() time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.last
}

func (p *haPings) close() { close(p.stop); <-p.done }

// haUpstreamClient is a plain upstream device on netstack, for contrast.
type haUpstreamClient struct {
	dev  *wgdevice.Device
	net  *netstack.Net
	addr netip.Addr
	pub  [32]byte
}

func (c *haUpstreamClient) port() uint16 {
	get, _ := c.dev.IpcGet()
	for _, l := range strings.Split(get, "\n") {
		if v, ok := strings.CutPrefix(l, "listen_port="); ok {
			p, _ := strconv.ParseUint(v, 10, 16)
			return uint16(p)
		}
	}
	return 0
}

func (c *haUpstreamClient) ping(to netip.Addr, timeout time.Duration) error {
	pc, err := c.net.DialPingAddr(netip.Addr{}, to)
	if err != nil {
		return err
	}
	defer pc.Close()
	pc.SetDeadline(time.Now().Add(timeout))
	if _, err := pc.Write([]byte{8, 0, 0, 0, 0, 1, 0, 1}); err != nil {
		return err
	}
	_, err = pc.Read(make([]byte, 1500))
	return err
}

func sceneHA(tl *timeline) error {
	const tunnelAddr = "198.18.30.1"
	sharedPriv, sharedPub := newKey()

	// Two backends, one key, one tunnel address; fixed listen ports.
	var servers [2]*node
	var endpoints [2]*ops.Server
	var backends []lbsim.Backend
	for i := range servers {
		s, err := startNode(fmt.Sprintf("backend-%c", 'A'+i), tunnelAddr, sharedPriv, 0, device.Config{})
		if err != nil {
			return err
		}
		defer s.dev.Close()
		if err := s.dev.IpcSet(fmt.Sprintf("listen_port=%d\n", s.port)); err != nil {
			return err
		}
		o, err := ops.Start(s.dev, "127.0.0.1:0", ops.Config{NoProcessMetrics: true})
		if err != nil {
			return err
		}
		defer o.Close()
		servers[i], endpoints[i] = s, o
		backends = append(backends, lbsim.Backend{Addr: netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), s.port), Health: o.URL() + "/readyz"})
	}
	lb, err := lbsim.Start(lbsim.Config{Backends: backends, HealthInterval: 250 * time.Millisecond})
	if err != nil {
		return err
	}
	defer lb.Close()
	tl.say("backend-A udp :%d, backend-B udp :%d, one key, tunnel %s; balancer at %s hashes each client address:port to a backend and polls their /readyz",
		servers[0].port, servers[1].port, tunnelAddr, lb.Addr())
	front := &node{pub: sharedPub, addr: netip.MustParseAddr(tunnelAddr), port: lb.Addr().Port()}
	keepalive := "persistent_keepalive_interval=1\n"

	// The wghooks client.
	c, err := startNode("client", "198.18.30.2", [32]byte{}, 0, device.Config{})
	if err != nil {
		return err
	}
	defer c.dev.Close()
	for _, s := range servers {
		if err := s.addPeer(c, false); err != nil {
			return err
		}
	}
	if err := c.addPeer(front, true, keepalive); err != nil {
		return err
	}
	if err := c.ping(front.addr, 5*time.Second); err != nil {
		return fmt.Errorf("wghooks client through the balancer: %w", err)
	}
	oldPort := c.dev.Bind().Port()
	flow, _ := lb.FlowOf(netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), oldPort))
	dead := flow.Backend
	tl.say("wghooks client, source port %d → balancer → backend-%c (1 s keepalives)", oldPort, 'A'+dead)

	// A plain upstream client, started again (same key, new random port)
	// until its flow lands on the same backend, so both face the same
	// death.
	upriv, upub := newKey()
	for _, s := range servers {
		if err := s.dev.IpcSet(fmt.Sprintf("public_key=%s\nallowed_ip=198.18.30.3/32\n", hex.EncodeToString(upub[:]))); err != nil {
			return err
		}
	}
	var u *haUpstreamClient
	var uflow lbsim.Flow
	for try := 0; ; try++ {
		if u, err = startUpstreamClient("198.18.30.3", upriv, upub); err != nil {
			return err
		}
		if err := u.dev.IpcSet(fmt.Sprintf("public_key=%s\nendpoint=%s\nallowed_ip=%s/32\n%s", hex.EncodeToString(sharedPub[:]), lb.Addr(), tunnelAddr, keepalive)); err != nil {
			u.dev.Close()
			return err
		}
		if err := u.ping(front.addr, 5*time.Second); err != nil {
			u.dev.Close()
			return fmt.Errorf("upstream client through the balancer: %w", err)
		}
		uflow, _ = lb.FlowOf(netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), u.port()))
		if uflow.Backend == dead || try == 10 {
			break
		}
		u.dev.Close()
		// The next incarnation's handshake must carry a later timestamp:
		// upstream rounds TAI64N down to about 16.8 ms, and a backend drops
		// an initiation no newer than the key's last one as a replay.
		time.Sleep(40 * time.Millisecond)
	}
	defer u.dev.Close()
	tl.say("upstream client, source port %d → balancer → backend-%c (1 s keepalives)", u.port(), 'A'+uflow.Backend)

	ours := startHAPings(c.ping, front.addr)
	defer ours.close()
	theirs := startHAPings(u.ping, front.addr)
	defer theirs.close()

	killed := time.Now()
	endpoints[dead].Close()
	servers[dead].dev.Close()
	tl.say("backend-%c died (process gone: UDP socket and /readyz)", 'A'+dead)

	healthySaid, oursSaid := false, false
	var escapedIn time.Duration
	for deadline := killed.Add(12 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if !healthySaid && !lb.Healthy(dead) {
			healthySaid = true
			tl.say("balancer marks backend-%c unhealthy: new flows go to backend-%c; existing flows stay pinned while they send", 'A'+dead, 'A'+1-dead)
		}
		if at := ours.lastReply(); !oursSaid && at.After(killed.Add(500*time.Millisecond)) {
			oursSaid = true
			escapedIn = at.Sub(killed)
			newPort := c.dev.Bind().Port()
			nf, _ := lb.FlowOf(netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), newPort))
			tl.say("wghooks client: no answer, moved to source port %d (a new flow) → backend-%c; pings answered again %.1f s after the death (%d flow escape)",
				newPort, 'A'+nf.Backend, escapedIn.Seconds(), c.dev.Stats().FlowEscapes)
		}
	}
	uf, _ := lb.FlowOf(netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), u.port()))
	upStuck := !theirs.lastReply().After(killed.Add(500 * time.Millisecond))
	if upStuck {
		tl.say("upstream client: still no answer after %.0f s; its flow stays pinned to dead backend-%c (%d datagrams sent into it since the death)",
			time.Since(killed).Seconds(), 'A'+uf.Backend, uf.FromClient-uflow.FromClient)
	}
	if !oursSaid {
		return fmt.Errorf("the wghooks client did not recover within 12 s")
	}
	up := "stuck"
	if !upStuck {
		up = "recovered too"
	}
	tl.say("backend died → client escaped to a new flow in %.1f s (upstream: %s)", escapedIn.Seconds(), up)
	return nil
}

func startUpstreamClient(addr string, priv, pub [32]byte) (*haUpstreamClient, error) {
	a := netip.MustParseAddr(addr)
	tdev, tnet, err := tun.NewNetstack([]netip.Addr{a}, 0)
	if err != nil {
		return nil, err
	}
	d := wgdevice.NewDevice(tdev, wgconn.NewDefaultBind(), wgdevice.NewLogger(wgdevice.LogLevelSilent, ""))
	if err := d.IpcSet(fmt.Sprintf("private_key=%s\nlisten_port=0\n", hex.EncodeToString(priv[:]))); err != nil {
		d.Close()
		return nil, err
	}
	if err := d.Up(); err != nil {
		d.Close()
		return nil, err
	}
	return &haUpstreamClient{dev: d, net: tnet, addr: a, pub: pub}, nil
}
