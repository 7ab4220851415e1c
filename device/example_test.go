package device_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/crypto/curve25519"
	"golang.zx2c4.com/wireguard/tun/netstack"

	"github.com/wghooks/wghooks/device"
	"github.com/wghooks/wghooks/hooks"
	"github.com/wghooks/wghooks/tun"
)

// Two WireGuard devices in one process, each on a gVisor netstack TUN (no
// root, no kernel interface), talking over loopback UDP; an HTTP server on
// one tunnel address answers a client on the other.
func Example_netstackHTTP() {
	serverPriv, serverPub := newKey()
	clientPriv, clientPub := newKey()
	serverAddr := netip.MustParseAddr("198.18.0.1")
	clientAddr := netip.MustParseAddr("198.18.0.2")

	// The server: a netstack TUN with its tunnel address, a device with
	// the zero Config, and its peer in UAPI text.
	stun, snet, err := tun.NewNetstack([]netip.Addr{serverAddr}, 0)
	if err != nil {
		log.Fatal(err)
	}
	server, err := device.New(stun, device.Config{})
	if err != nil {
		log.Fatal(err)
	}
	defer server.Close()
	if err := server.IpcSet("private_key=" + serverPriv + "\nlisten_port=0\n" +
		"public_key=" + clientPub + "\nallowed_ip=198.18.0.2/32\n"); err != nil {
		log.Fatal(err)
	}
	if err := server.Up(); err != nil {
		log.Fatal(err)
	}

	// The client, pointed at the server's UDP port on loopback.
	ctun, cnet, err := tun.NewNetstack([]netip.Addr{clientAddr}, 0)
	if err != nil {
		log.Fatal(err)
	}
	client, err := device.New(ctun, device.Config{})
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()
	if err := client.IpcSet(fmt.Sprintf("private_key=%s\npublic_key=%s\nallowed_ip=198.18.0.1/32\nendpoint=127.0.0.1:%d\n",
		clientPriv, serverPub, waitPort(server))); err != nil {
		log.Fatal(err)
	}
	if err := client.Up(); err != nil {
		log.Fatal(err)
	}

	// HTTP through the tunnel: the server listens on its netstack, the
	// client dials through its own.
	ln, err := snet.ListenTCPAddrPort(netip.AddrPortFrom(serverAddr, 80))
	if err != nil {
		log.Fatal(err)
	}
	hs := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello %s over WireGuard", r.RemoteAddr[:strings.LastIndex(r.RemoteAddr, ":")])
	})}
	go hs.Serve(ln)
	defer hs.Close()

	fmt.Println(get(cnet, "http://198.18.0.1/"))
	// Output:
	// 200 OK: hello 198.18.0.2 over WireGuard
}

// A peer's endpoint given as a hostname (the wghooks_endpoint UAPI key):
// the device keeps the name, resolves it with the Resolver of its Config
// (here a function; by default DNS), re-resolves it when its TTL runs out
// and fails over between its addresses.
func Example_hostnameEndpoint() {
	serverPriv, serverPub := newKey()
	clientPriv, clientPub := newKey()
	server, snet := newNetstackDevice("198.18.0.1", device.Config{})
	defer server.Close()
	if err := server.IpcSet("private_key=" + serverPriv + "\nlisten_port=0\npublic_key=" + clientPub + "\nallowed_ip=198.18.0.2/32\n"); err != nil {
		log.Fatal(err)
	}
	defer serveHello(snet)()
	port := waitPort(server)

	resolver := hooks.ResolverFunc(func(ctx context.Context, host string) (hooks.Answer, error) {
		if host != "vpn.example" {
			return hooks.Answer{}, fmt.Errorf("no such host %q", host)
		}
		return hooks.Answer{Addrs: []netip.Addr{netip.MustParseAddr("127.0.0.1")}, TTL: time.Minute}, nil
	})
	client, cnet := newNetstackDevice("198.18.0.2", device.Config{Endpoints: device.EndpointConfig{Resolver: resolver}})
	defer client.Close()
	if err := client.IpcSet(fmt.Sprintf("private_key=%s\npublic_key=%s\nallowed_ip=198.18.0.1/32\nwghooks_endpoint=vpn.example:%d\n",
		clientPriv, serverPub, port)); err != nil {
		log.Fatal(err)
	}

	fmt.Println(get(cnet, "http://198.18.0.1/"))
	conf, err := client.IpcGet()
	if err != nil {
		log.Fatal(err)
	}
	for _, line := range strings.Split(conf, "\n") {
		if strings.HasPrefix(line, "wghooks_endpoint=") {
			fmt.Println(strings.TrimSuffix(line, fmt.Sprint(port)) + "PORT")
		}
	}
	// Output:
	// 200 OK: hello
	// wghooks_endpoint=vpn.example:PORT
}

// Drain before a planned restart: the old process expires its sessions
// and saves what the next one needs (learned endpoints) to its state
// file, and /readyz turns 503 so a balancer sends no new flows. The new
// process, same key, port and state file, sends every peer it knows a
// handshake initiation as soon as its peers are configured, so the
// client's traffic flows again at once instead of after its own timers
// (15 s to 2 min).
func ExampleDevice_DrainPeers() {
	dir, err := os.MkdirTemp("", "wghooks-example-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	cfg := device.Config{Restart: device.RestartConfig{
		StateFile: filepath.Join(dir, "wg0.json"),
		// A netstack TUN is up before it is configured: broadcast once the
		// first transaction adds peers.
		Broadcast: device.BroadcastAtFirstPeers,
	}}
	serverPriv, serverPub := newKey()
	clientPriv, clientPub := newKey()
	serverConf := "private_key=" + serverPriv + "\nlisten_port=%d\npublic_key=" + clientPub + "\nallowed_ip=198.18.0.2/32\n"

	old, snet := newNetstackDevice("198.18.0.1", cfg)
	if err := old.IpcSet(fmt.Sprintf(serverConf, 0)); err != nil {
		log.Fatal(err)
	}
	stop := serveHello(snet)
	port := waitPort(old)
	// A roaming client: the server learns its endpoint from its packets.
	client, cnet := newNetstackDevice("198.18.0.2", device.Config{})
	defer client.Close()
	if err := client.IpcSet(fmt.Sprintf("private_key=%s\npublic_key=%s\nallowed_ip=198.18.0.1/32\nendpoint=127.0.0.1:%d\n",
		clientPriv, serverPub, port)); err != nil {
		log.Fatal(err)
	}
	fmt.Println("before:", get(cnet, "http://198.18.0.1/"))

	// The planned restart: drain (or `wghooks drain wg0`, or the UAPI key
	// drain=true), then stop the old process.
	if err := old.DrainPeers(); err != nil {
		log.Fatal(err)
	}
	fmt.Println("draining:", old.Draining())
	stop()
	old.Close()

	// The new process: same key, port and state file, its peers as the
	// configuration gives them (a roaming client has no endpoint there:
	// the state file brings the one the old process learned).
	next, snet := newNetstackDevice("198.18.0.1", cfg)
	defer next.Close()
	if err := next.IpcSet(fmt.Sprintf(serverConf, port)); err != nil {
		log.Fatal(err)
	}
	defer serveHello(snet)()
	fmt.Println("after:", get(cnet, "http://198.18.0.1/"))
	// Output:
	// before: 200 OK: hello
	// draining: true
	// after: 200 OK: hello
}

// A gateway that holds no peers until one knocks: its Config.JIT.Provider
// is a Go function (here a map; a database or a control plane in real
// life). The first handshake initiation from an unknown key is
// authenticated, the provider asked, the peer installed and the
// initiation answered, so the client's first request goes through.
func ExampleJITConfig() {
	gatewayPriv, gatewayPub := newKey()
	clientPriv, clientPub := newKey()
	known := map[string]hooks.PeerConfig{
		clientPub: {AllowedIPs: []netip.Prefix{netip.MustParsePrefix("198.18.0.2/32")}},
	}
	provider := hooks.ProviderFunc(func(ctx context.Context, key hooks.PublicKey) (hooks.PeerConfig, error) {
		pc, ok := known[key.Hex()]
		if !ok {
			return hooks.PeerConfig{}, hooks.ErrUnknownPeer
		}
		return pc, nil
	})

	gateway, gnet := newNetstackDevice("198.18.0.1", device.Config{JIT: device.JITConfig{Provider: provider}})
	defer gateway.Close()
	if err := gateway.IpcSet("private_key=" + gatewayPriv + "\nlisten_port=0\n"); err != nil {
		log.Fatal(err)
	}
	defer serveHello(gnet)()

	client, cnet := newNetstackDevice("198.18.0.2", device.Config{})
	defer client.Close()
	if err := client.IpcSet(fmt.Sprintf("private_key=%s\npublic_key=%s\nallowed_ip=198.18.0.1/32\nendpoint=127.0.0.1:%d\n",
		clientPriv, gatewayPub, waitPort(gateway))); err != nil {
		log.Fatal(err)
	}

	fmt.Println(get(cnet, "http://198.18.0.1/"))
	conf, err := gateway.IpcGet()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("installed:", strings.Contains(conf, "public_key="+clientPub+"\n"))
	// Output:
	// 200 OK: hello
	// installed: true
}

// newKey returns a new WireGuard key pair in UAPI's hex.
func newKey() (priv, pub string) {
	var k [32]byte
	if _, err := rand.Read(k[:]); err != nil {
		log.Fatal(err)
	}
	k[0] &= 248
	k[31] = (k[31] & 127) | 64
	p, err := curve25519.X25519(k[:], curve25519.Basepoint)
	if err != nil {
		log.Fatal(err)
	}
	return hex.EncodeToString(k[:]), hex.EncodeToString(p)
}

// newNetstackDevice starts a device with cfg on a netstack TUN with
// tunnel address addr, up.
func newNetstackDevice(addr string, cfg device.Config) (*device.Device, *netstack.Net) {
	tdev, n, err := tun.NewNetstack([]netip.Addr{netip.MustParseAddr(addr)}, 0)
	if err != nil {
		log.Fatal(err)
	}
	d, err := device.New(tdev, cfg)
	if err != nil {
		log.Fatal(err)
	}
	if err := d.Up(); err != nil {
		log.Fatal(err)
	}
	return d, n
}

// waitPort returns the device's UDP port once its socket is open.
func waitPort(d *device.Device) uint16 {
	for i := 0; i < 500; i++ {
		if p := d.Bind().Port(); p != 0 {
			return p
		}
		time.Sleep(10 * time.Millisecond)
	}
	log.Fatal("the device opened no UDP port")
	return 0
}

// serveHello serves "hello" over HTTP at 198.18.0.1:80 on n until the
// returned function is called.
func serveHello(n *netstack.Net) (stop func()) {
	ln, err := n.ListenTCPAddrPort(netip.MustParseAddrPort("198.18.0.1:80"))
	if err != nil {
		log.Fatal(err)
	}
	hs := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "hello") })}
	go hs.Serve(ln)
	return func() { hs.Close() }
}

// get fetches url through the netstack n and returns "STATUS: BODY".
func get(n *netstack.Net, url string) string {
	c := &http.Client{
		Transport: &http.Transport{DialContext: n.DialContext, DisableKeepAlives: true},
		Timeout:   20 * time.Second,
	}
	resp, err := c.Get(url)
	if err != nil {
		return "error: " + err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.Status + ": " + string(b)
}
