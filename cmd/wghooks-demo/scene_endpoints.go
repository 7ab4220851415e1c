package main

import (
	"context"
	"fmt"
	"net/netip"
	"time"

	"github.com/wghooks/wghooks/device"
	"github.com/wghooks/wghooks/hooks"
	"github.com/wghooks/wghooks/internal/testkit"
	"github.com/wghooks/wghooks/internal/udprelay"
)

// sceneEndpoints: the client knows the server as vpn.example.test, which
// resolves to an IPv6 and an IPv4 address (loopback relays standing in for
// two paths to one server). IPv6 is dead from the start; later the path in
// use dies while pings flow; then IPv6 comes back.
func sceneEndpoints(tl *timeline) error {
	server, err := startNode("server", "198.18.30.1", testkit.Keypair{}, 0, device.Config{})
	if err != nil {
		return err
	}
	defer server.dev.Close()
	port, relays, err := udprelay.Start(netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), server.Port), []string{"::1", "127.0.0.2"}, "::1")
	if err != nil {
		return err
	}
	for _, r := range relays {
		defer r.Close()
	}
	v6, v4 := relays["::1"], relays["127.0.0.2"]
	resolver := hooks.ResolverFunc(func(context.Context, string) (hooks.Answer, error) {
		return hooks.Answer{Addrs: []netip.Addr{v4.Addr.Addr(), v6.Addr.Addr()}, TTL: time.Minute}, nil
	})
	cfg := device.Config{}
	cfg.Endpoints.Resolver = resolver
	cfg.Endpoints.FailbackInterval = 2 * time.Second
	client, err := startNode("client", "198.18.30.2", testkit.Keypair{}, 0, cfg)
	if err != nil {
		return err
	}
	defer client.dev.Close()
	if err := server.addPeer(client.Node, false); err != nil {
		return err
	}
	host := fmt.Sprintf("vpn.example.test:%d", port)
	tl.say("vpn.example.test resolves to %s (dead) and %s", v6.Addr.Addr(), v4.Addr.Addr())
	t0 := time.Now()
	if err := client.addPeer(server.Node, false, "wghooks_endpoint="+host+"\n"); err != nil {
		return err
	}
	tl.say("client: peer endpoint set to %s over UAPI (wghooks_endpoint)", host)
	if _, err := client.PingUntil(server.Addr, 200*time.Millisecond, 20*time.Second); err != nil {
		return fmt.Errorf("no ping through the tunnel: %w", err)
	}
	tl.say("IPv6 candidate dead → failover to IPv4: first ping answered %s after the endpoint was set, endpoint in use %s", tl.since(t0), endpointInUse(client, server.Node))

	v4.Cut()
	v6.Restore()
	tl.say("the IPv4 path dies while pings flow (and IPv6 works again)")
	t1 := time.Now()
	if _, err := client.PingUntil(server.Addr, 200*time.Millisecond, 20*time.Second); err != nil {
		return fmt.Errorf("tunnel not restored: %w", err)
	}
	tl.say("traffic restored in %s without a new handshake, endpoint in use %s", tl.since(t1), endpointInUse(client, server.Node))

	v4.Restore()
	tl.say("now both paths work; the client stays on IPv6, the preferred family")
	for i := 0; i < 5; i++ {
		client.Ping(server.Addr, time.Second)
		time.Sleep(200 * time.Millisecond)
	}
	st := client.dev.Stats()
	tl.say("endpoint in use %s; %d failovers counted; `wg show` prints the address, `wghooks endpoints` the name and candidates", endpointInUse(client, server.Node), st.EndpointFailovers)
	return nil
}
