package testkit

// Nodes: one end of an in-process tunnel. A node is a WireGuard device on
// a gVisor netstack TUN (its tunnel address) listening on loopback UDP,
// running wghooks or plain upstream wireguard-go, driven only through
// their exported APIs and UAPI text.

import (
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	wgconn "golang.zx2c4.com/wireguard/conn"
	wgdevice "golang.zx2c4.com/wireguard/device"
	wgtun "golang.zx2c4.com/wireguard/tun"
	"golang.zx2c4.com/wireguard/tun/netstack"

	"github.com/wghooks/wghooks/device"
	"github.com/wghooks/wghooks/tun"
)

// Node is one end of an in-process tunnel: its key, tunnel address,
// loopback UDP port and netstack, the host side of its TUN.
type Node struct {
	Key  Keypair
	Addr netip.Addr    // tunnel address
	Port uint16        // UDP listen port on loopback
	Net  *netstack.Net // nil for a node that only stands for an address (a balancer's front)
}

// IpcGetter is a device that answers a UAPI get: wghooks or upstream.
type IpcGetter interface{ IpcGet() (string, error) }

// IpcSetter is a device that takes a UAPI set: wghooks or upstream.
type IpcSetter interface{ IpcSet(string) error }

// MakeNode makes a node with key (zero: a new one) and a netstack TUN at
// addr, for a rig that builds the device itself (Port is left 0).
func MakeNode(addr string, key Keypair) (*Node, wgtun.Device, error) {
	if key.IsZero() {
		key = NewKeypair()
	}
	n := &Node{Key: key}
	var err error
	if n.Addr, err = netip.ParseAddr(addr); err != nil {
		return nil, nil, fmt.Errorf("failed to parse tunnel address %q: %w", addr, err)
	}
	tdev, tnet, err := tun.NewNetstack([]netip.Addr{n.Addr}, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("failed to create the netstack of %s: %w", addr, err)
	}
	n.Net = tnet
	return n, tdev, nil
}

// StartWghooks starts a wghooks device with cfg on a netstack TUN with
// tunnel address addr and key (zero: a new one), up and listening on UDP
// port (0: any), and waits until its port is open. The caller closes the
// device.
func StartWghooks(addr string, key Keypair, port uint16, cfg device.Config) (*Node, *device.Device, error) {
	n, tdev, err := MakeNode(addr, key)
	if err != nil {
		return nil, nil, err
	}
	d, err := device.New(tdev, cfg)
	if err != nil {
		return nil, nil, fmt.Errorf("failed to start wghooks at %s: %w", addr, err)
	}
	if err := d.IpcSet(UAPI("private_key", n.Key.PrivHex(), "listen_port", strconv.Itoa(int(port)))); err != nil {
		d.Close()
		return nil, nil, fmt.Errorf("failed to configure wghooks at %s: %w", addr, err)
	}
	if err := d.Up(); err != nil {
		d.Close()
		return nil, nil, fmt.Errorf("failed to bring wghooks at %s up: %w", addr, err)
	}
	if !Poll(5*time.Second, func() bool { return d.Bind().Port() != 0 }) {
		d.Close()
		return nil, nil, fmt.Errorf("wghooks at %s never opened its UDP port", addr)
	}
	n.Port = d.Bind().Port()
	return n, d, nil
}

// NewWghooks is StartWghooks with a new key on any port, logging errors to
// the test (when cfg has no Errorf), failing the test on error and closing
// the device at Cleanup.
func NewWghooks(tb testing.TB, addr string, cfg device.Config) (*Node, *device.Device) {
	tb.Helper()
	if cfg.Errorf == nil {
		cfg.Errorf = tb.Logf
	}
	n, d, err := StartWghooks(addr, Keypair{}, 0, cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { d.Close() })
	return n, d
}

// StartUpstream starts a plain upstream wireguard-go device on a netstack
// TUN with tunnel address addr and key (zero: a new one), over bind (nil:
// upstream's default bind), up and listening on UDP port (0: any). log nil
// logs errors only, prefixed "upstream ADDR: ". The caller closes the
// device.
func StartUpstream(addr string, key Keypair, port uint16, bind wgconn.Bind, log *wgdevice.Logger) (*Node, *wgdevice.Device, error) {
	n, tdev, err := MakeNode(addr, key)
	if err != nil {
		return nil, nil, err
	}
	if bind == nil {
		bind = wgconn.NewDefaultBind()
	}
	if log == nil {
		log = wgdevice.NewLogger(wgdevice.LogLevelError, "upstream "+addr+": ")
	}
	d := wgdevice.NewDevice(tdev, bind, log)
	if err := d.IpcSet(UAPI("private_key", n.Key.PrivHex(), "listen_port", strconv.Itoa(int(port)))); err != nil {
		d.Close()
		return nil, nil, fmt.Errorf("failed to configure upstream at %s: %w", addr, err)
	}
	if err := d.Up(); err != nil {
		d.Close()
		return nil, nil, fmt.Errorf("failed to bring upstream at %s up: %w", addr, err)
	}
	if n.Port, err = ReadListenPort(d); err != nil {
		d.Close()
		return nil, nil, fmt.Errorf("upstream at %s: %w", addr, err)
	}
	return n, d, nil
}

// NewUpstream is StartUpstream with a new key on any port, over bind (nil:
// upstream's default), failing the test on error and closing the device
// at Cleanup.
func NewUpstream(tb testing.TB, addr string, bind wgconn.Bind) (*Node, *wgdevice.Device) {
	tb.Helper()
	n, d, err := StartUpstream(addr, Keypair{}, 0, bind, nil)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(d.Close)
	return n, d
}

// PeerConf is the UAPI text that makes peer a peer: its public key, its
// tunnel address as the allowed IP and, withEndpoint, its loopback
// address.
func PeerConf(peer *Node, withEndpoint bool) string {
	conf := UAPI("public_key", peer.Key.PubHex(), "allowed_ip", netip.PrefixFrom(peer.Addr, peer.Addr.BitLen()).String())
	if withEndpoint {
		conf += UAPI("endpoint", LoopbackAddrPort(peer.Port).String())
	}
	return conf
}

// AddPeer adds peer as a peer of d (PeerConf), followed by the UAPI lines
// extra, and fails the test on error.
func AddPeer(tb testing.TB, d IpcSetter, peer *Node, withEndpoint bool, extra ...string) {
	tb.Helper()
	if err := d.IpcSet(PeerConf(peer, withEndpoint) + strings.Join(extra, "")); err != nil {
		tb.Fatal(err)
	}
}

// LoopbackAddrPort is 127.0.0.1:port, where nodes listen.
func LoopbackAddrPort(port uint16) netip.AddrPort {
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), port)
}

// ReadListenPort reads listen_port from d's get reply.
func ReadListenPort(d IpcGetter) (uint16, error) {
	get, err := d.IpcGet()
	if err != nil {
		return 0, err
	}
	for _, l := range strings.Split(get, "\n") {
		if v, ok := strings.CutPrefix(l, "listen_port="); ok {
			p, err := strconv.ParseUint(v, 10, 16)
			if err != nil {
				return 0, fmt.Errorf("failed to parse listen_port %q: %w", v, err)
			}
			return uint16(p), nil
		}
	}
	return 0, errors.New("no listen_port in the get reply")
}

// ListenPort is ReadListenPort, failing the test on error.
func ListenPort(tb testing.TB, d IpcGetter) uint16 {
	tb.Helper()
	p, err := ReadListenPort(d)
	if err != nil {
		tb.Fatal(err)
	}
	return p
}

// FreeUDPPort returns a UDP port free on all addresses right now, for a
// node that must keep its port across restarts.
func FreeUDPPort(tb testing.TB) uint16 {
	tb.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{})
	if err != nil {
		tb.Fatal(err)
	}
	defer c.Close()
	return uint16(c.LocalAddr().(*net.UDPAddr).Port)
}

// PeerValueOf returns the first value of key in peer pk's section of the
// get reply get ("" when there is none).
func PeerValueOf(get string, pk [32]byte, key string) string {
	in := false
	want := hex.EncodeToString(pk[:])
	for _, l := range strings.Split(get, "\n") {
		k, v, _ := strings.Cut(l, "=")
		if k == "public_key" {
			in = v == want
			continue
		}
		if in && k == key {
			return v
		}
	}
	return ""
}

// PeerValue is PeerValueOf on d's get reply, failing the test if the get
// fails.
func PeerValue(tb testing.TB, d IpcGetter, pk [32]byte, key string) string {
	tb.Helper()
	get, err := d.IpcGet()
	if err != nil {
		tb.Fatal(err)
	}
	return PeerValueOf(get, pk, key)
}
