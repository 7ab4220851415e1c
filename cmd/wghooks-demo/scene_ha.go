package main

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/wghooks/wghooks/device"
	"github.com/wghooks/wghooks/internal/lbsim"
	"github.com/wghooks/wghooks/internal/testkit"
	"github.com/wghooks/wghooks/ops"
)

func sceneHA(tl *timeline) error {
	const tunnelAddr = "198.18.30.1"
	sharedKey := testkit.NewKeypair()

	// Two backends, one key, one tunnel address; fixed listen ports.
	var servers [2]*node
	var endpoints [2]*ops.Server
	var backends []lbsim.Backend
	for i := range servers {
		s, err := startNode(fmt.Sprintf("backend-%c", 'A'+i), tunnelAddr, sharedKey, 0, device.Config{})
		if err != nil {
			return err
		}
		defer s.dev.Close()
		if err := s.dev.IpcSet(fmt.Sprintf("listen_port=%d\n", s.Port)); err != nil {
			return err
		}
		o, err := ops.Start(s.dev, "127.0.0.1:0", ops.Config{NoProcessMetrics: true})
		if err != nil {
			return err
		}
		defer o.Close()
		servers[i], endpoints[i] = s, o
		backends = append(backends, lbsim.Backend{Addr: netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), s.Port), Health: o.URL() + "/readyz"})
	}
	lb, err := lbsim.Start(lbsim.Config{Backends: backends, HealthInterval: 250 * time.Millisecond})
	if err != nil {
		return err
	}
	defer lb.Close()
	tl.say("backend-A udp :%d, backend-B udp :%d, one key, tunnel %s; balancer at %s hashes each client address:port to a backend and polls their /readyz",
		servers[0].Port, servers[1].Port, tunnelAddr, lb.Addr())
	front := &testkit.Node{Key: sharedKey, Addr: netip.MustParseAddr(tunnelAddr), Port: lb.Addr().Port()}
	keepalive := "persistent_keepalive_interval=1\n"

	// The wghooks client.
	c, err := startNode("client", "198.18.30.2", testkit.Keypair{}, 0, device.Config{})
	if err != nil {
		return err
	}
	defer c.dev.Close()
	for _, s := range servers {
		if err := s.addPeer(c.Node, false); err != nil {
			return err
		}
	}
	if err := c.addPeer(front, true, keepalive); err != nil {
		return err
	}
	if err := c.Ping(front.Addr, 5*time.Second); err != nil {
		return fmt.Errorf("wghooks client through the balancer: %w", err)
	}
	oldPort := c.dev.Bind().Port()
	flow, _ := lb.FlowOf(netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), oldPort))
	dead := flow.Backend
	tl.say("wghooks client, source port %d → balancer → backend-%c (1 s keepalives)", oldPort, 'A'+dead)

	// A plain upstream client, started again (same key, new random port)
	// until its flow lands on the same backend, so both face the same
	// death.
	ukey := testkit.NewKeypair()
	for _, s := range servers {
		if err := s.dev.IpcSet(fmt.Sprintf("public_key=%s\nallowed_ip=198.18.30.3/32\n", ukey.PubHex())); err != nil {
			return err
		}
	}
	var u *upstreamClient
	var uflow lbsim.Flow
	for try := 0; ; try++ {
		if u, err = startUpstream("198.18.30.3", ukey, 0); err != nil {
			return err
		}
		if err := u.dev.IpcSet(fmt.Sprintf("public_key=%s\nendpoint=%s\nallowed_ip=%s/32\n%s", sharedKey.PubHex(), lb.Addr(), tunnelAddr, keepalive)); err != nil {
			u.dev.Close()
			return err
		}
		if err := u.Ping(front.Addr, 5*time.Second); err != nil {
			u.dev.Close()
			return fmt.Errorf("upstream client through the balancer: %w", err)
		}
		uflow, _ = lb.FlowOf(netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), u.Port))
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
	tl.say("upstream client, source port %d → balancer → backend-%c (1 s keepalives)", u.Port, 'A'+uflow.Backend)

	ours := testkit.StartPinger(c.Node, front.Addr)
	ours.Every(100 * time.Millisecond)
	defer ours.Stop()
	theirs := testkit.StartPinger(u.Node, front.Addr)
	theirs.Every(100 * time.Millisecond)
	defer theirs.Stop()

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
		if at := ours.LastReply(); !oursSaid && at.After(killed.Add(500*time.Millisecond)) {
			oursSaid = true
			escapedIn = at.Sub(killed)
			newPort := c.dev.Bind().Port()
			nf, _ := lb.FlowOf(netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), newPort))
			tl.say("wghooks client: no answer, moved to source port %d (a new flow) → backend-%c; pings answered again %.1f s after the death (%d flow escape)",
				newPort, 'A'+nf.Backend, escapedIn.Seconds(), c.dev.Stats().FlowEscapes)
		}
	}
	uf, _ := lb.FlowOf(netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), u.Port))
	upStuck := !theirs.LastReply().After(killed.Add(500 * time.Millisecond))
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
