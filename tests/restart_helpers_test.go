package tests

// Helpers of the restart tests and benchmark: a server that can be
// restarted with the same key, port and configuration (wghooks or plain
// upstream), a plain upstream client that is never touched, and probes
// for "traffic flows again".

import (
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	wgconn "golang.zx2c4.com/wireguard/conn"
	wgdevice "golang.zx2c4.com/wireguard/device"
	wgtun "golang.zx2c4.com/wireguard/tun"

	"wghooks/conn"
	"wghooks/device"
	"wghooks/tun"
)

// restartCountBind wraps a bind and counts the handshake messages that
// cross it, so tests can assert "at most one new handshake".
type restartCountBind struct {
	wgconn.Bind
	initSent, initRecv, respRecv atomic.Int64
}

func newRestartCountBind() *restartCountBind {
	return &restartCountBind{Bind: wgconn.NewDefaultBind()}
}

func (b *restartCountBind) Open(port uint16) ([]wgconn.ReceiveFunc, uint16, error) {
	fns, actual, err := b.Bind.Open(port)
	for i, fn := range fns {
		fn := fn
		fns[i] = func(packets [][]byte, sizes []int, eps []wgconn.Endpoint) (int, error) {
			n, err := fn(packets, sizes, eps)
			for j := 0; j < n; j++ {
				switch {
				case sizes[j] == conn.MessageInitiationSize && packets[j][0] == conn.MessageInitiation:
					b.initRecv.Add(1)
				case sizes[j] == conn.MessageResponseSize && packets[j][0] == conn.MessageResponse:
					b.respRecv.Add(1)
				}
			}
			return n, err
		}
	}
	return fns, actual, err
}

func (b *restartCountBind) Send(bufs [][]byte, ep wgconn.Endpoint) error {
	for _, buf := range bufs {
		if len(buf) == conn.MessageInitiationSize && buf[0] == conn.MessageInitiation {
			b.initSent.Add(1)
		}
	}
	return b.Bind.Send(bufs, ep)
}

// initiations is every handshake initiation that crossed the bind.
func (b *restartCountBind) initiations() int64 { return b.initSent.Load() + b.initRecv.Load() }

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

// restartLog collects a device's log lines and shows them if the test
// fails.
type restartLog struct {
	mu   sync.Mutex
	text strings.Builder
}

func newRestartLog(tb testing.TB, name string) *restartLog {
	l := &restartLog{}
	tb.Cleanup(func() {
		if tb.Failed() {
			tb.Logf("log of %s:\n%s", name, l.String())
		}
	})
	return l
}

func (l *restartLog) logf(format string, args ...any) {
	line := time.Now().Format("15:04:05.000 ") + fmt.Sprintf(format, args...)
	l.mu.Lock()
	defer l.mu.Unlock()
	l.text.WriteString(line + "\n")
}

func (l *restartLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.text.String()
}

// restartServer is one run of a server process: wghooks or upstream.
type restartServer struct {
	node
	bind *restartCountBind
	ours *device.Device
	up   *wgdevice.Device
	upAt time.Time // configured and up: the moment recovery is measured from
	log  *restartLog
}

// restartPeerConf is the server's configuration of its one client.
func restartPeerConf(client *node, withEndpoint bool) string {
	conf := uapiCfg("public_key", client.key.pubHex(), "allowed_ip", netip.PrefixFrom(client.addr, 32).String())
	if withEndpoint {
		conf += uapiCfg("endpoint", fmt.Sprintf("127.0.0.1:%d", client.port))
	}
	return conf
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
func startRestartServer(tb testing.TB, key keypair, addr string, port uint16, peers string, cfg device.Config, flow restartFlow) *restartServer {
	tb.Helper()
	s := &restartServer{node: node{key: key, addr: netip.MustParseAddr(addr)}, bind: newRestartCountBind(), log: newRestartLog(tb, "wghooks server "+addr)}
	tdev, tnet, err := tun.NewNetstack([]netip.Addr{s.addr}, 0)
	if err != nil {
		tb.Fatal(err)
	}
	s.net = tnet
	var link *restartLinkTUN
	if flow == restartDaemonFlow {
		link = newRestartLinkTUN(tdev)
		tdev = link
	}
	cfg.Bind = s.bind
	cfg.Errorf = s.log.logf
	cfg.Verbosef = s.log.logf
	s.ours, err = device.New(tdev, cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.ours.Close() })
	if flow == restartNetstackFlow {
		restartWait(tb, 5*time.Second, "the netstack device to come up", s.ours.IsUp)
	}
	if err := s.ours.IpcSet(uapiCfg("private_key", key.privHex(), "listen_port", fmt.Sprint(port)) + peers); err != nil {
		tb.Fatal(err)
	}
	s.upAt = time.Now()
	if link != nil {
		link.linkUp()
	}
	restartWait(tb, 5*time.Second, "the server to come up", func() bool { return s.ours.IsUp() && s.ours.Bind().Port() != 0 })
	s.port = s.ours.Bind().Port()
	return s
}

// startUpstreamRestartServer starts a plain upstream server with the same
// configuration.
func startUpstreamRestartServer(tb testing.TB, key keypair, addr string, port uint16, peers string) *restartServer {
	tb.Helper()
	s := &restartServer{node: node{key: key, addr: netip.MustParseAddr(addr)}, bind: newRestartCountBind()}
	tdev, tnet, err := tun.NewNetstack([]netip.Addr{s.addr}, 0)
	if err != nil {
		tb.Fatal(err)
	}
	s.net = tnet
	s.up = wgdevice.NewDevice(tdev, s.bind, wgdevice.NewLogger(wgdevice.LogLevelError, "upstream server: "))
	tb.Cleanup(s.up.Close)
	if err := s.up.IpcSet(uapiCfg("private_key", key.privHex(), "listen_port", fmt.Sprint(port)) + peers); err != nil {
		tb.Fatal(err)
	}
	if err := s.up.Up(); err != nil {
		tb.Fatal(err)
	}
	s.upAt = time.Now()
	s.port = listenPortOf(tb, s.up)
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
func restartTransportRx(get string, b *restartCountBind) int64 {
	var rx int64
	for _, l := range strings.Split(get, "\n") {
		if v, ok := strings.CutPrefix(l, "rx_bytes="); ok {
			var n int64
			fmt.Sscan(v, &n)
			rx += n
		}
	}
	return rx - conn.MessageInitiationSize*b.initRecv.Load() - conn.MessageResponseSize*b.respRecv.Load()
}

// restartClient is a plain upstream client on netstack; only its bind
// counts handshake messages.
type restartClient struct {
	node
	dev  *wgdevice.Device
	bind *restartCountBind
}

func (c *restartClient) transportRx() int64 {
	get, _ := c.dev.IpcGet()
	return restartTransportRx(get, c.bind)
}

// newRestartClient starts a client with no peer yet.
func newRestartClient(tb testing.TB, addr string) *restartClient {
	tb.Helper()
	c := &restartClient{node: node{key: newKeypair(tb), addr: netip.MustParseAddr(addr)}, bind: newRestartCountBind()}
	tdev, tnet, err := tun.NewNetstack([]netip.Addr{c.addr}, 0)
	if err != nil {
		tb.Fatal(err)
	}
	c.net = tnet
	c.dev = wgdevice.NewDevice(tdev, c.bind, wgdevice.NewLogger(wgdevice.LogLevelError, "upstream client: "))
	tb.Cleanup(c.dev.Close)
	if err := c.dev.IpcSet(uapiCfg("private_key", c.key.privHex(), "listen_port", "0")); err != nil {
		tb.Fatal(err)
	}
	if err := c.dev.Up(); err != nil {
		tb.Fatal(err)
	}
	c.port = listenPortOf(tb, c.dev)
	return c
}

// restartClientPeerConf is the client's configuration of the server.
func restartClientPeerConf(server *node, serverPort uint16, keepalive int) string {
	conf := uapiCfg("public_key", server.key.pubHex(), "allowed_ip", netip.PrefixFrom(server.addr, 32).String(),
		"endpoint", fmt.Sprintf("127.0.0.1:%d", serverPort))
	if keepalive > 0 {
		conf += uapiCfg("persistent_keepalive_interval", fmt.Sprint(keepalive))
	}
	return conf
}

// restartPing sends one ICMP echo through the tunnel and waits for the
// reply.
func restartPing(from *node, to netip.Addr, timeout time.Duration) error {
	c, err := from.net.DialPingAddr(netip.Addr{}, to)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(timeout))
	if _, err := c.Write([]byte{8, 0, 0, 0, 0, 1, 0, 1, 'r', 's'}); err != nil {
		return err
	}
	_, err = c.Read(make([]byte, 1500))
	return err
}

// restartPinger pings every interval until stopped and remembers when
// each successful ping was sent.
type restartPinger struct {
	mu   sync.Mutex
	oks  []time.Time
	stop chan struct{}
	done chan struct{}
}

func startRestartPinger(tb testing.TB, from *node, to netip.Addr, every time.Duration) *restartPinger {
	p := &restartPinger{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(p.done)
		for i := 0; i < 100000; i++ {
			sent := time.Now()
			if restartPing(from, to, 2*every) == nil {
				p.mu.Lock()
				p.oks = append(p.oks, sent)
				p.mu.Unlock()
			}
			select {
			case <-p.stop:
				return
			case <-time.After(time.Until(sent.Add(every))):
			}
		}
	}()
	tb.Cleanup(p.halt)
	return p
}

func (p *restartPinger) halt() {
	select {
	case <-p.stop:
	default:
		close(p.stop)
	}
	<-p.done
}

// firstOKAfter returns when the first ping sent after t that got its
// reply was sent.
func (p *restartPinger) firstOKAfter(t time.Time) (time.Time, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, ok := range p.oks {
		if !ok.Before(t) {
			return ok, true
		}
	}
	return time.Time{}, false
}

// restartWait polls cond every 10 ms until it holds or timeout passes.
func restartWait(tb testing.TB, timeout time.Duration, what string, cond func() bool) {
	tb.Helper()
	if !restartPoll(timeout, cond) {
		tb.Fatalf("timed out after %v waiting for %s", timeout, what)
	}
}

// restartPoll polls cond every 10 ms for up to timeout and reports whether
// it held.
func restartPoll(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func restartStatePath(tb testing.TB) string {
	return filepath.Join(tb.TempDir(), "state", "wg0.json")
}

// restartFreeUDPPort returns a UDP port free on all addresses right now.
func restartFreeUDPPort(tb testing.TB) uint16 {
	tb.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{})
	if err != nil {
		tb.Fatal(err)
	}
	defer c.Close()
	return uint16(c.LocalAddr().(*net.UDPAddr).Port)
}
