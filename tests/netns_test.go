//go:build linux

package tests

// Reusable network-namespace helpers for tests that need real TUN devices,
// real daemons and the WireGuard tools. Every name (namespace, link,
// interface) carries the test binary's pid and a counter, so several test
// binaries can run at once; everything is removed by t.Cleanup, also when a
// test fails. Namespaces left behind by a test binary that was killed are
// swept by the next run (see TestMain).
//
// The tests share the filesystem across namespaces, and so the UAPI socket
// directory /var/run/wireguard: always name interfaces with netnsName.

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/wghooks/wghooks/internal/testkit"
)

// Paths and fixed names used by the netns tests.
const (
	// debianWireguardGo is the distribution's wireguard-go, the reference
	// the interop tests talk to.
	debianWireguardGo = "/usr/bin/wireguard-go"
	// netnsPrefix starts every namespace these tests create.
	netnsPrefix = "wghooks-"
	// netnsSocketDir is where userspace WireGuard sockets live; shared by
	// all namespaces.
	netnsSocketDir = "/var/run/wireguard"
)

// netnsRequire skips t, saying why, unless the machine can run netns
// tests: root, /dev/net/tun and the ip tool.
func netnsRequire(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("skipping: network-namespace tests need root")
	}
	if _, err := os.Stat("/dev/net/tun"); err != nil {
		t.Skipf("skipping: network-namespace tests need /dev/net/tun: %v", err)
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Fatalf("root and /dev/net/tun are present but the ip tool (iproute2) is missing: %v", err)
	}
}

// netnsRequireTool fails t when a tool the test needs is not installed
// (CI installs them; a missing tool is a broken set-up, not a reason to
// skip).
func netnsRequireTool(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("failed to find %q (install wireguard-tools, wireguard-go, iperf3, iproute2): %v", name, err)
	}
	return p
}

var netnsSeq atomic.Uint32

// netnsName returns prefix followed by this process's pid and a counter,
// both in base 36: unique across concurrently running test binaries and
// at most 15 bytes (an interface name's limit) for a prefix of up to 4.
func netnsName(prefix string) string {
	return prefix + strconv.FormatInt(int64(os.Getpid()), 36) + "x" + strconv.FormatUint(uint64(netnsSeq.Add(1)), 36)
}

// netns is one network namespace created by a test.
type netns struct {
	name string
}

// newNetns creates a namespace with its loopback up. Cleanup kills every
// process left in it and deletes it.
func newNetns(t testing.TB) *netns {
	t.Helper()
	netnsRequire(t)
	ns := &netns{name: fmt.Sprintf("%s%d-%d", netnsPrefix, os.Getpid(), netnsSeq.Add(1))}
	if out, err := exec.Command("ip", "netns", "add", ns.name).CombinedOutput(); err != nil {
		t.Fatalf("failed to create namespace %q: %v: %s", ns.name, err, out)
	}
	t.Cleanup(func() {
		if err := netnsDelete(ns.name); err != nil {
			t.Errorf("failed to delete namespace %q: %v", ns.name, err)
		}
	})
	ns.run(t, "ip", "link", "set", "lo", "up")
	return ns
}

// netnsDelete kills the processes still inside the namespace (only they
// can be there: the name is ours) and deletes it.
func netnsDelete(name string) error {
	out, _ := exec.Command("ip", "netns", "pids", name).Output()
	var pids []int
	for _, f := range strings.Fields(string(out)) {
		if pid, err := strconv.Atoi(f); err == nil {
			pids = append(pids, pid)
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	for _, pid := range pids {
		netnsWaitGone(pid, 5*time.Second)
	}
	if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
		return fmt.Errorf("%v: %s", err, out)
	}
	return nil
}

// netnsWaitGone waits until pid no longer exists.
func netnsWaitGone(pid int, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if syscall.Kill(pid, 0) != nil {
			return true
		}
		time.Sleep(20 * time.Millisecond)
	}
	return false
}

// killPid ends a process this test started indirectly (a daemon that
// went to the background): SIGTERM, then SIGKILL after 5 s.
func killPid(pid int) {
	syscall.Kill(pid, syscall.SIGTERM)
	if !netnsWaitGone(pid, 5*time.Second) {
		syscall.Kill(pid, syscall.SIGKILL)
		netnsWaitGone(pid, 5*time.Second)
	}
}

// netnsDeadOwner reports whether name is prefix followed by the pid of a
// process that no longer runs, then "-".
func netnsDeadOwner(name, prefix string) bool {
	rest, ok := strings.CutPrefix(name, prefix)
	if !ok {
		return false
	}
	owner, _, found := strings.Cut(rest, "-")
	pid, err := strconv.Atoi(owner)
	return found && err == nil && pid != os.Getpid() && syscall.Kill(pid, 0) == syscall.ESRCH
}

// netnsSweepStale deletes namespaces and daemon builds left by a test
// binary that no longer runs (killed by a timeout, say).
func netnsSweepStale() {
	if old, err := filepath.Glob(filepath.Join(os.TempDir(), netnsBuildPrefix+"*")); err == nil {
		for _, dir := range old {
			if netnsDeadOwner(filepath.Base(dir), netnsBuildPrefix) {
				os.RemoveAll(dir)
			}
		}
	}
	if os.Geteuid() != 0 {
		return
	}
	out, err := exec.Command("ip", "netns", "list").Output()
	if err != nil {
		return
	}
	for _, line := range strings.Split(string(out), "\n") {
		if f := strings.Fields(line); len(f) > 0 && netnsDeadOwner(f[0], netnsPrefix) {
			netnsDelete(f[0])
		}
	}
}

// command returns an exec.Cmd running args inside the namespace.
func (ns *netns) command(ctx context.Context, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", ns.name}, args...)...)
}

// exec runs args inside the namespace (bounded to a minute) and returns
// the combined output.
func (ns *netns) exec(args ...string) (string, error) {
	return ns.execEnv(nil, args...)
}

// execEnv is exec with extra environment variables ("K=V").
func (ns *netns) execEnv(env []string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := ns.command(ctx, args...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("failed to run %q in %s: %w: %s", strings.Join(args, " "), ns.name, err, bytes.TrimSpace(out))
	}
	return string(out), nil
}

// run is exec that fails the test on error.
func (ns *netns) run(t testing.TB, args ...string) string {
	t.Helper()
	out, err := ns.exec(args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// netnsProc is a process started in a namespace by a test.
type netnsProc struct {
	name string
	cmd  *exec.Cmd
	out  *testkit.Log
	done chan struct{} // closed when the process has exited
	err  error         // Wait's result, valid after done
}

// start starts args in the namespace with extra environment env. Its
// output is collected and logged if the test fails. Cleanup stops it with
// SIGTERM, then SIGKILL after 5 s.
func (ns *netns) start(t testing.TB, env []string, args ...string) *netnsProc {
	t.Helper()
	p := &netnsProc{name: args[0], done: make(chan struct{}), out: testkit.NewLog(nil, args[0])}
	// `ip netns exec` execs the command itself, so the pid is the command's.
	p.cmd = ns.command(context.Background(), args...)
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stdout = p.out
	p.cmd.Stderr = p.out
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("failed to start %q in %s: %v", strings.Join(args, " "), ns.name, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.stop()
		if t.Failed() {
			t.Logf("output of %s (%s):\n%s", p.name, ns.name, p.out.String())
		}
	})
	return p
}

// exited reports whether the process has ended.
func (p *netnsProc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop ends the process group: SIGTERM, then SIGKILL after 5 s. It returns
// once the process has been reaped.
func (p *netnsProc) stop() {
	if p.exited() {
		return
	}
	pgid := p.cmd.Process.Pid
	syscall.Kill(-pgid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		syscall.Kill(-pgid, syscall.SIGKILL)
		<-p.done
	}
}

// netnsPair is two namespaces joined by a veth pair, addressed
// 198.18.0.1/24 (a) and 198.18.0.2/24 (b), plus fd00:18::1/64 and ::2.
type netnsPair struct {
	a, b         *netns
	addrA, addrB netip.Addr
	addr6A       netip.Addr
	addr6B       netip.Addr
}

// newNetnsPair creates the two namespaces and the veth between them.
func newNetnsPair(t testing.TB) *netnsPair {
	t.Helper()
	p := &netnsPair{
		a: newNetns(t), b: newNetns(t),
		addrA: netip.MustParseAddr("198.18.0.1"), addrB: netip.MustParseAddr("198.18.0.2"),
		addr6A: netip.MustParseAddr("fd00:18::1"), addr6B: netip.MustParseAddr("fd00:18::2"),
	}
	// Both ends are created directly inside their namespaces, so the
	// names never meet in the host's namespace. Deleting a namespace
	// deletes its end, and with it the pair.
	if out, err := exec.Command("ip", "link", "add", "veth0", "netns", p.a.name, "type", "veth",
		"peer", "name", "veth0", "netns", p.b.name).CombinedOutput(); err != nil {
		t.Fatalf("failed to create veth between %s and %s: %v: %s", p.a.name, p.b.name, err, out)
	}
	for _, side := range []struct {
		ns       *netns
		v4, v6   netip.Addr
		peerName string
	}{{p.a, p.addrA, p.addr6A, "b"}, {p.b, p.addrB, p.addr6B, "a"}} {
		side.ns.run(t, "ip", "addr", "add", side.v4.String()+"/24", "dev", "veth0")
		side.ns.run(t, "ip", "addr", "add", side.v6.String()+"/64", "dev", "veth0", "nodad")
		side.ns.run(t, "ip", "link", "set", "veth0", "up")
	}
	return p
}

// ping waits up to timeout for one ICMP echo reply from addr.
func (ns *netns) ping(addr netip.Addr, timeout time.Duration) error {
	secs := int(timeout.Seconds())
	if secs < 1 {
		secs = 1
	}
	_, err := ns.exec("ping", "-n", "-c", "1", "-w", strconv.Itoa(secs), addr.String())
	return err
}

// do runs fn on an OS thread switched into the namespace. Sockets fn
// creates stay in the namespace after do returns.
func (ns *netns) do(fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		self := fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid())
		orig, err := unix.Open(self, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("failed to open %q: %w", self, err)
			return
		}
		defer unix.Close(orig)
		path := filepath.Join("/var/run/netns", ns.name)
		target, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("failed to open namespace %q: %w", path, err)
			return
		}
		defer unix.Close(target)
		if err := unix.Setns(target, unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("failed to enter namespace %q: %w", ns.name, err)
			return
		}
		ferr := fn()
		if err := unix.Setns(orig, unix.CLONE_NEWNET); err != nil {
			// Leave the thread locked: it ends with this goroutine
			// instead of running other goroutines in the wrong namespace.
			errc <- fmt.Errorf("failed to leave namespace %q: %w", ns.name, err)
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

// listenTCP listens on addr (port 0 picks one) inside the namespace; the
// listener is closed at cleanup.
func (ns *netns) listenTCP(t testing.TB, addr netip.AddrPort) net.Listener {
	t.Helper()
	var ln net.Listener
	err := ns.do(func() (err error) {
		ln, err = net.Listen("tcp", addr.String())
		return err
	})
	if err != nil {
		t.Fatalf("failed to listen on %s in %s: %v", addr, ns.name, err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

// dialTCP connects from inside the namespace.
func (ns *netns) dialTCP(addr netip.AddrPort, timeout time.Duration) (net.Conn, error) {
	var c net.Conn
	err := ns.do(func() (err error) {
		c, err = net.DialTimeout("tcp", addr.String(), timeout)
		return err
	})
	return c, err
}

// httpClient returns an HTTP client whose every request connects to addr
// inside ns (the daemons' operations endpoint listens on its loopback).
func (ns *netns) httpClient(addr netip.AddrPort) *http.Client {
	return &http.Client{
		Timeout: 5 * time.Second,
		Transport: &http.Transport{
			DisableKeepAlives: true,
			DialContext: func(context.Context, string, string) (net.Conn, error) {
				return ns.dialTCP(addr, 2*time.Second)
			},
		},
	}
}

// netnsTCPEcho checks a TCP exchange from one namespace to a listener on
// addr in another: size random bytes go there and come back unchanged.
func netnsTCPEcho(t testing.TB, from, to *netns, addr netip.Addr, size int) error {
	t.Helper()
	ln := to.listenTCP(t, netip.AddrPortFrom(addr, 0))
	srvErr := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			srvErr <- err
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(30 * time.Second))
		_, err = io.CopyN(c, c, int64(size))
		srvErr <- err
	}()
	port := ln.Addr().(*net.TCPAddr).Port
	c, err := from.dialTCP(netip.AddrPortFrom(addr, uint16(port)), 15*time.Second)
	if err != nil {
		ln.Close()
		<-srvErr
		return fmt.Errorf("failed to connect to %s:%d from %s: %w", addr, port, from.name, err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	payload := make([]byte, size)
	randRead(payload)
	werr := make(chan error, 1)
	go func() {
		_, err := c.Write(payload)
		werr <- err
	}()
	got := make([]byte, size)
	_, rerr := io.ReadFull(c, got)
	if err := <-werr; err != nil {
		return fmt.Errorf("failed to send %d bytes to %s: %w", size, addr, err)
	}
	if rerr != nil {
		return fmt.Errorf("failed to read the echo from %s: %w", addr, rerr)
	}
	if err := <-srvErr; err != nil {
		return fmt.Errorf("echo server at %s: %w", addr, err)
	}
	if !bytes.Equal(got, payload) {
		return fmt.Errorf("echo from %s differs from what was sent", addr)
	}
	return nil
}

// netnsSocket returns the UAPI socket path of iface.
func netnsSocket(iface string) string {
	return filepath.Join(netnsSocketDir, iface+".sock")
}

// netnsDaemon is a userspace WireGuard daemon running in the foreground
// in a namespace.
type netnsDaemon struct {
	*netnsProc
	ns    *netns
	iface string
}

// startDaemon runs `bin -f iface` in the namespace (extra environment
// env), waits until its UAPI socket answers and its interface exists, and
// stops it at cleanup (removing a socket it left behind).
func (ns *netns) startDaemon(t testing.TB, bin, iface string, env ...string) *netnsDaemon {
	t.Helper()
	sock := netnsSocket(iface)
	t.Cleanup(func() { os.Remove(sock) }) // runs after the process is stopped
	// Our daemon saves state under /var/lib/wghooks by default; tests
	// keep it in their temp dir unless they choose a path themselves.
	defaults := []string{"LOG_LEVEL=verbose", "WGHOOKS_STATE_FILE=" + filepath.Join(t.TempDir(), iface+".json")}
	env = append(defaults, env...)
	d := &netnsDaemon{netnsProc: ns.start(t, env, bin, "-f", iface), ns: ns, iface: iface}
	deadline := time.Now().Add(20 * time.Second)
	for {
		if c, err := net.Dial("unix", sock); err == nil {
			c.Close()
			if _, err := ns.exec("ip", "link", "show", "dev", iface); err == nil {
				return d
			}
		}
		if d.exited() {
			t.Fatalf("%s exited before serving %s: %v\n%s", bin, sock, d.err, d.out.String())
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not serve %s within 20s\n%s", bin, sock, d.out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// wg runs Debian's wg inside the daemon's namespace and fails the test on
// error.
func (d *netnsDaemon) wg(t testing.TB, args ...string) string {
	t.Helper()
	return d.ns.run(t, append([]string{"wg"}, args...)...)
}

// netnsKey is a WireGuard key pair in wg's base64 form, with the private
// key also in a file for `wg set ... private-key FILE`.
type netnsKey struct {
	priv, pub string
	file      string
}

// newNetnsKey makes a key pair for the wg tools.
func newNetnsKey(t testing.TB) netnsKey {
	t.Helper()
	k := testkit.NewKeypair()
	nk := netnsKey{
		priv: base64.StdEncoding.EncodeToString(k.Priv[:]),
		pub:  base64.StdEncoding.EncodeToString(k.Pub[:]),
	}
	f, err := os.CreateTemp(t.TempDir(), "key-")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(nk.priv + "\n"); err != nil {
		t.Fatal(err)
	}
	nk.file = f.Name()
	return nk
}

// netnsTunnel is two daemons in the two namespaces of a pair, configured
// with wg as peers of each other, their interfaces up with tunnel
// addresses 198.19.0.1/24 and .2 (and fd00:19::1/64, ::2).
type netnsTunnel struct {
	pair         *netnsPair
	a, b         *netnsDaemon
	keyA, keyB   netnsKey
	portA, portB int
	tunA, tunB   netip.Addr
	tun6A, tun6B netip.Addr
}

// newNetnsTunnel starts binA in pair.a and binB in pair.b and connects
// them. The tunnel is configured but no packet has crossed it yet.
func newNetnsTunnel(t testing.TB, pair *netnsPair, binA, binB string) *netnsTunnel {
	t.Helper()
	netnsRequireTool(t, "wg")
	tn := &netnsTunnel{
		pair: pair,
		keyA: newNetnsKey(t), keyB: newNetnsKey(t),
		portA: 51820, portB: 51821,
		tunA: netip.MustParseAddr("198.19.0.1"), tunB: netip.MustParseAddr("198.19.0.2"),
		tun6A: netip.MustParseAddr("fd00:19::1"), tun6B: netip.MustParseAddr("fd00:19::2"),
	}
	tn.a = pair.a.startDaemon(t, binA, netnsName("wgh"))
	tn.b = pair.b.startDaemon(t, binB, netnsName("wgh"))
	tn.a.configure(t, tn.keyA, tn.portA, tn.keyB, netip.AddrPortFrom(pair.addrB, uint16(tn.portB)),
		[]netip.Addr{tn.tunA, tn.tun6A}, []netip.Addr{tn.tunB, tn.tun6B})
	tn.b.configure(t, tn.keyB, tn.portB, tn.keyA, netip.AddrPortFrom(pair.addrA, uint16(tn.portA)),
		[]netip.Addr{tn.tunB, tn.tun6B}, []netip.Addr{tn.tunA, tn.tun6A})
	return tn
}

// configure sets the daemon up with wg and ip as one end of a tunnel:
// its key and port, one peer at peerEndpoint owning peerAddrs, and its
// interface up with addrs (/24 for IPv4, /64 for IPv6).
func (d *netnsDaemon) configure(t testing.TB, key netnsKey, port int, peer netnsKey, peerEndpoint netip.AddrPort, addrs, peerAddrs []netip.Addr) {
	t.Helper()
	d.wg(t, "set", d.iface, "listen-port", strconv.Itoa(port), "private-key", key.file,
		"peer", peer.pub, "endpoint", peerEndpoint.String(), "allowed-ips", netnsHostPrefixes(peerAddrs))
	for _, a := range addrs {
		if a.Is4() {
			d.ns.run(t, "ip", "addr", "add", a.String()+"/24", "dev", d.iface)
		} else {
			d.ns.run(t, "ip", "addr", "add", a.String()+"/64", "dev", d.iface, "nodad")
		}
	}
	d.ns.run(t, "ip", "link", "set", d.iface, "up")
}

// netnsHostPrefixes formats addrs as wg's comma-separated host prefixes.
func netnsHostPrefixes(addrs []netip.Addr) string {
	s := make([]string, len(addrs))
	for i, a := range addrs {
		s[i] = netip.PrefixFrom(a, a.BitLen()).String()
	}
	return strings.Join(s, ",")
}

// netnsProcsOf lists the pids of running processes whose executable is
// bin and whose command line contains arg (a daemon that went to the
// background, say).
func netnsProcsOf(bin, arg string) []int {
	entries, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		exe, err := os.Readlink(filepath.Join("/proc", e.Name(), "exe"))
		if err != nil || exe != bin {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		for _, a := range bytes.Split(cmdline, []byte{0}) {
			if string(a) == arg {
				pids = append(pids, pid)
				break
			}
		}
	}
	return pids
}
