package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"golang.org/x/crypto/curve25519"
	"golang.zx2c4.com/wireguard/tun/netstack"

	"wghooks/device"
	"wghooks/tun"
)

// node is one demo host: a wghooks device on netstack, listening on
// loopback UDP.
type node struct {
	name      string
	priv, pub [32]byte
	addr      netip.Addr
	port      uint16
	dev       *device.Device
	net       *netstack.Net
}

func newKey() (priv, pub [32]byte) {
	rand.Read(priv[:])
	priv[0] &= 248
	priv[31] = (priv[31] & 127) | 64
	p, _ := curve25519.X25519(priv[:], curve25519.Basepoint)
	copy(pub[:], p)
	return priv, pub
}

// startNode brings a device up with the given key (zero: a new one) on
// 127.0.0.1:port (0: any).
func startNode(name, addr string, priv [32]byte, port uint16, cfg device.Config) (*node, error) {
	n := &node{name: name, addr: netip.MustParseAddr(addr)}
	if priv == ([32]byte{}) {
		n.priv, n.pub = newKey()
	} else {
		n.priv = priv
		p, _ := curve25519.X25519(priv[:], curve25519.Basepoint)
		copy(n.pub[:], p)
	}
	tdev, tnet, err := tun.NewNetstack([]netip.Addr{n.addr}, 0)
	if err != nil {
		return nil, err
	}
	n.net = tnet
	if n.dev, err = device.New(tdev, cfg); err != nil {
		return nil, err
	}
	if err := n.dev.IpcSet(fmt.Sprintf("private_key=%s\nlisten_port=%d\n", hex.EncodeToString(n.priv[:]), port)); err != nil {
		n.dev.Close()
		return nil, err
	}
	if err := n.dev.Up(); err != nil {
		n.dev.Close()
		return nil, err
	}
	for i := 0; i < 100 && n.dev.Bind().Port() == 0; i++ {
		time.Sleep(10 * time.Millisecond)
	}
	n.port = n.dev.Bind().Port()
	return n, nil
}

// addPeer makes other a peer of n; withEndpoint tells n where other is.
func (n *node) addPeer(other *node, withEndpoint bool, extra ...string) error {
	conf := fmt.Sprintf("public_key=%s\nallowed_ip=%s/32\n", hex.EncodeToString(other.pub[:]), other.addr)
	if withEndpoint {
		conf += fmt.Sprintf("endpoint=127.0.0.1:%d\n", other.port)
	}
	conf += strings.Join(extra, "")
	return n.dev.IpcSet(conf)
}

// serve runs an HTTP server on n's tunnel address, port 80.
func (n *node) serve(body string) (stop func(), err error) {
	ln, err := n.net.ListenTCPAddrPort(netip.AddrPortFrom(n.addr, 80))
	if err != nil {
		return nil, err
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, body)
	})}
	go srv.Serve(ln)
	return func() { srv.Close() }, nil
}

// get fetches http://to/ through n's tunnel.
func (n *node) get(to netip.Addr, timeout time.Duration) (string, error) {
	c := &http.Client{
		Timeout: timeout,
		Transport: &http.Transport{
			DisableKeepAlives: true,
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				return n.net.DialContextTCPAddrPort(ctx, netip.AddrPortFrom(to, 80))
			},
		},
	}
	resp, err := c.Get("http://" + to.String() + "/")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

// ping sends one ICMP echo through the tunnel and waits up to timeout.
func (n *node) ping(to netip.Addr, timeout time.Duration) error {
	c, err := n.net.DialPingAddr(netip.Addr{}, to)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(timeout))
	if _, err := c.Write([]byte{8, 0, 0, 0, 0, 1, 0, 1}); err != nil {
		return err
	}
	_, err = c.Read(make([]byte, 1500))
	return err
}
