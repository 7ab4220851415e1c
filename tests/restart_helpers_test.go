package tests

// Helpers of the restart tests and benchmark: a server that can be
// restarted with the same key, port and configuration (wghooks or plain
// upstream), a plain upstream client that is never touched, and probes
// for "traffic flows again".

import (
	"fmt"
	"net/netip"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	wgdevice "golang.zx2c4.com/wireguard/device"
	wgtun "golang.zx2c4.com/wireguard/tun"

	"github.com/wghooks/wghooks/conn"
	"github.com/wghooks/wghooks/device"
	"github.com/wghooks/wghooks/internal/testkit"
)

// restartLinkTUN is a netstack TUN whose link comes up only when the test
// says so, like a kernel TUN after `ip link set up`: the daemon's flow
// (configure, then link up) in process.
type restartLinkTUN struct {
	wgtun.Device
	events    chan wgtun.Event
	closeOnce sync.Once
}

func newRestartLinkTUN(inner wgtun.Device) *restartLinkTUN {
	return &restartLinkTUN{Device: inner, events: make(chan wgtun.Event, 4)}
}

func (l *restartLinkTUN) Events() <-chan wgtun.Event { return l.events }
func (l *restartLinkTUN) linkUp()                    { l.events <- wgtun.EventUp }

func (l *restartLinkTUN) Close() error {
	err := l.Device.Close()
	l.closeOnce.Do(func() { close(l.events) })
	return err
}

// restartServer is one run of a server process: wghooks or upstream.
type restartServer struct {
	testkit.Node
	bind *testkit.CountingBind
	ours *device.Device
	up   *wgdevice.Device
	upAt time.Time // configured and up: the moment recovery is measured from
	log  *testkit.Log
}

// restartFlow is how a wghooks server is brought up.
type restartFlow int

const (
	// restartDaemonFlow: created, configured with key, port and peers in
	// one transaction, then its link comes up (the daemon under wg-quick).
	restartDaemonFlow restartFlow = iota
	// restartNetstackFlow: a netstack TUN, up from its creation, then
	// configured (an embedder).
	restartNetstackFlow
)

// startRestartServer starts a wghooks server.
func startRestartServer(tb testing.TB, key testkit.Keypair, addr string, port uint16, peers string, cfg device.Config, flow restartFlow) *restartServer {
	tb.Helper()
	n, tdev, err := testkit.MakeNode(addr, key)
	if err != nil {
		tb.Fatal(err)
	}
	s := &restartServer{Node: *n, bind: testkit.NewCountingBind(nil), log: testkit.NewLog(tb, "wghooks server "+addr)}
	var link *restartLinkTUN
	if flow == restartDaemonFlow {
		link = newRestartLinkTUN(tdev)
		tdev = link
	}
	cfg.Bind = s.bind
	cfg.Errorf = s.log.Logf
	cfg.Verbosef = s.log.Logf
	s.ours, err = device.New(tdev, cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.ours.Close() })
	if flow == restartNetstackFlow {
		testkit.Eventually(tb, 5*time.Second, "the netstack device to come up", s.ours.IsUp)
	}
	if err := s.ours.IpcSet(testkit.UAPI("private_key", key.PrivHex(), "listen_port", fmt.Sprint(port)) + peers); err != nil {
		tb.Fatal(err)
	}
	s.upAt = time.Now()
	if link != nil {
		link.linkUp()
	}
	testkit.Eventually(tb, 5*time.Second, "the server to come up", func() bool { return s.ours.IsUp() && s.ours.Bind().Port() != 0 })
	s.Port = s.ours.Bind().Port()
	return s
}

// startUpstreamRestartServer starts a plain upstream server with the same
// configuration.
func startUpstreamRestartServer(tb testing.TB, key testkit.Keypair, addr string, port uint16, peers string) *restartServer {
	tb.Helper()
	n, tdev, err := testkit.MakeNode(addr, key)
	if err != nil {
		tb.Fatal(err)
	}
	s := &restartServer{Node: *n, bind: testkit.NewCountingBind(nil)}
	s.up = wgdevice.NewDevice(tdev, s.bind, wgdevice.NewLogger(wgdevice.LogLevelError, "upstream server: "))
	tb.Cleanup(s.up.Close)
	if err := s.up.IpcSet(testkit.UAPI("private_key", key.PrivHex(), "listen_port", fmt.Sprint(port)) + peers); err != nil {
		tb.Fatal(err)
	}
	if err := s.up.Up(); err != nil {
		tb.Fatal(err)
	}
	s.upAt = time.Now()
	s.Port = testkit.ListenPort(tb, s.up)
	return s
}

func (s *restartServer) close() {
	if s.ours != nil {
		s.ours.Close()
	} else {
		s.up.Close()
	}
}

func (s *restartServer) ipcGet() string {
	var get string
	if s.ours != nil {
		get, _ = s.ours.IpcGet()
	} else {
		get, _ = s.up.IpcGet()
	}
	return get
}

// transportRx is how many bytes of data and keepalives from its peers the
// server has decrypted.
func (s *restartServer) transportRx() int64 { return restartTransportRx(s.ipcGet(), s.bind) }

// restartTransportRx is rx_bytes over all peers minus the handshake
// messages the bind counted: the bytes of data and keepalives decrypted.
func restartTransportRx(get string, b *testkit.CountingBind) int64 {
	var rx int64
	for _, l := range strings.Split(get, "\n") {
		if v, ok := strings.CutPrefix(l, "rx_bytes="); ok {
			var n int64
			fmt.Sscan(v, &n)
			rx += n
		}
	}
	return rx - conn.MessageInitiationSize*b.InitRecv.Load() - conn.MessageResponseSize*b.RespRecv.Load()
}

// restartClient is a plain upstream client on netstack; only its bind
// counts handshake messages.
type restartClient struct {
	testkit.Node
	dev  *wgdevice.Device
	bind *testkit.CountingBind
}

func (c *restartClient) transportRx() int64 {
	get, _ := c.dev.IpcGet()
	return restartTransportRx(get, c.bind)
}

// newRestartClient starts a client with no peer yet.
func newRestartClient(tb testing.TB, addr string) *restartClient {
	tb.Helper()
	b := testkit.NewCountingBind(nil)
	n, d := testkit.NewUpstream(tb, addr, b)
	return &restartClient{Node: *n, dev: d, bind: b}
}

// restartClientPeerConf is the client's configuration of the server.
func restartClientPeerConf(server *testkit.Node, serverPort uint16, keepalive int) string {
	conf := testkit.UAPI("public_key", server.Key.PubHex(), "allowed_ip", netip.PrefixFrom(server.Addr, 32).String(),
		"endpoint", fmt.Sprintf("127.0.0.1:%d", serverPort))
	if keepalive > 0 {
		conf += testkit.UAPI("persistent_keepalive_interval", fmt.Sprint(keepalive))
	}
	return conf
}

func restartStatePath(tb testing.TB) string {
	return filepath.Join(tb.TempDir(), "state", "wg0.json")
}
