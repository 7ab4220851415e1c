package tests

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wghooks/wghooks/internal/testkit"
)

// The shipped unit files, and where they expect the binaries.
const (
	systemdDir       = "../deploy/systemd"
	systemdBinDir    = "/usr/local/bin/"
	wgQuickDropIn    = "wg-quick@.service.d/wghooks.conf"
	debianWgQuickDir = "/lib/systemd/system"
)

// TestSystemdUnitsVerify runs `systemd-analyze verify` on the shipped
// wghooks@.service and on Debian's wg-quick@.service with our drop-in,
// each as an instance, with the binaries they name built to a temporary
// path substituted for /usr/local/bin (verify checks that ExecStart and
// ExecStartPost are executable). Any warning fails it, as does a
// hardening directive gone missing.
func TestSystemdUnitsVerify(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		testkit.Missing(t, "systemd-analyze (Debian's systemd) verifies the unit files: %v", err)
	}
	bins := filepath.Dir(wghooksBinary(t)) + "/"
	netnsBuild(t, "github.com/wghooks/wghooks/cmd/wghooks", "wghooks")

	dir := t.TempDir()
	copyUnit := func(from, to string) string {
		t.Helper()
		b, err := os.ReadFile(from)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
			t.Fatal(err)
		}
		text := strings.ReplaceAll(string(b), systemdBinDir, bins)
		if err := os.WriteFile(to, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	unit := copyUnit(filepath.Join(systemdDir, "wghooks@.service"), filepath.Join(dir, "wghooks@.service"))
	dropIn := copyUnit(filepath.Join(systemdDir, wgQuickDropIn), filepath.Join(dir, wgQuickDropIn))
	units := []string{filepath.Join(dir, "wghooks@wg0.service")}
	if _, err := os.Stat(filepath.Join(debianWgQuickDir, "wg-quick@.service")); err == nil {
		copyUnit(filepath.Join(debianWgQuickDir, "wg-quick@.service"), filepath.Join(dir, "wg-quick@.service"))
		units = append(units, filepath.Join(dir, "wg-quick@wg0.service"))
	} else {
		t.Errorf("Debian's wg-quick@.service is missing (install wireguard-tools): %v", err)
	}

	out, err := exec.Command(analyze, append([]string{"verify"}, units...)...).CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Fatalf("systemd-analyze verify %v: %v\n%s", units, err, out)
	}

	// systemd's own measure of the sandbox: "OK" (3.0 or less of 10) for
	// the hardened unit, up from 9.6 ("UNSAFE") for a bare one.
	out, err = exec.Command(analyze, "security", "--offline=true", "--threshold=30", units[0]).CombinedOutput()
	if err != nil {
		t.Fatalf("systemd-analyze security: exposure above 3.0 or failed: %v\n%s", err, out)
	}

	for _, line := range []string{
		"Type=notify", "NotifyAccess=main", "WatchdogSec=",
		"ExecStart=" + systemdBinDir + "wireguard-go --foreground %i",
		"CapabilityBoundingSet=CAP_NET_ADMIN CAP_NET_BIND_SERVICE",
		"AmbientCapabilities=CAP_NET_ADMIN CAP_NET_BIND_SERVICE",
		"NoNewPrivileges=yes", "ProtectSystem=strict", "ProtectHome=yes", "PrivateTmp=yes",
		"StateDirectory=wghooks", "StateDirectoryMode=0700",
		"RuntimeDirectory=wireguard", "RuntimeDirectoryMode=0755", "RuntimeDirectoryPreserve=yes",
		"ReadWritePaths=/run/wireguard", "DeviceAllow=/dev/net/tun rw",
		"RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK",
	} {
		if !strings.Contains(unit, "\n"+line) {
			t.Errorf("wghooks@.service lacks %q", line)
		}
	}
	if !strings.Contains(dropIn, "\nEnvironment=WG_QUICK_USERSPACE_IMPLEMENTATION="+systemdBinDir+"wireguard-go\n") {
		t.Errorf("the wg-quick drop-in does not point WG_QUICK_USERSPACE_IMPLEMENTATION at %swireguard-go", systemdBinDir)
	}
}

// TestNetnsSystemdNotify runs the daemon as wghooks@.service does, in the
// foreground with NOTIFY_SOCKET and WATCHDOG_USEC, and reads the
// notifications systemd would: READY=1 once it serves UAPI, WATCHDOG=1
// pings, STATUS following its readiness through configuration and a
// drain, and STOPPING=1 at SIGTERM, after which it exits cleanly.
func TestNetnsSystemdNotify(t *testing.T) {
	netnsRequire(t)
	netnsRequireTool(t, "wg")
	sock := filepath.Join(t.TempDir(), "notify")
	notify, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer notify.Close()
	next := func(want string) string {
		t.Helper()
		buf := make([]byte, 4096)
		var seen []string
		deadline := time.Now().Add(15 * time.Second)
		for {
			notify.SetReadDeadline(deadline)
			n, err := notify.Read(buf)
			if err != nil {
				t.Fatalf("no notification with %q (got %q): %v", want, seen, err)
			}
			msg := string(buf[:n])
			if strings.Contains(msg, want) {
				return msg
			}
			seen = append(seen, msg)
		}
	}

	ns := newNetns(t)
	iface := netnsName("sd")
	d := ns.startDaemon(t, wghooksBinary(t), iface, "NOTIFY_SOCKET="+sock, "WATCHDOG_USEC=1000000")
	if msg := next("READY=1"); !strings.Contains(msg, "STATUS=not ready: not configured") {
		t.Fatalf("READY=1 came with %q, want STATUS=not ready: not configured", msg)
	}
	next("WATCHDOG=1")

	key := newNetnsKey(t)
	d.wg(t, "set", iface, "private-key", key.file, "listen-port", "51820")
	ns.run(t, "ip", "link", "set", iface, "up")
	next("STATUS=ready")
	d.wg(t, "show", iface) // `wg` still talks to it
	// Drain with raw UAPI text, as `wghooks drain` sends it.
	if reply := testkit.Raw(t, netnsSocket(iface), "set=1\ndrain=true\n\n"); reply != "errno=0\n" {
		t.Fatalf("drain reply = %q", reply)
	}
	next("STATUS=not ready: draining")
	next("WATCHDOG=1")

	d.cmd.Process.Signal(syscall.SIGTERM)
	next("STOPPING=1")
	select {
	case <-d.done:
		if d.err != nil {
			t.Fatalf("daemon exited with %v after SIGTERM\n%s", d.err, d.out.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("daemon still running 10s after SIGTERM")
	}
}
