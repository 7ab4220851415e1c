//go:build linux

package tests

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestNetnsStartupRace runs the two lines many scripts start the daemon
// with, `wireguard-go wgX; ip link set wgX netns NS`, 20 times, and checks
// the daemon survived every time: the interface is in NS and the UAPI
// socket answers get=1. The backgrounding parent returns only once its
// child has adopted the TUN, so the move can no longer pull the interface
// from under a child still starting (before, 1 to 2 of 20 survived).
func TestNetnsStartupRace(t *testing.T) {
	netnsRequire(t)
	bin := wghooksBinary(t)
	from, to := newNetns(t), newNetns(t)
	state := t.TempDir()
	const runs = 20
	for i := 0; i < runs; i++ {
		iface := netnsName("wgs")
		// Cleanups run last-in first-out: the namespaces (and the daemons
		// in from) go after the sockets' removal is registered.
		t.Cleanup(func() { os.Remove(netnsSocket(iface)) })
		// LOG_LEVEL empty: the child's output goes to /dev/null, so the
		// script's output pipe closes when the script ends.
		env := []string{"LOG_LEVEL=", "WGHOOKS_STATE_FILE=" + filepath.Join(state, iface+".json")}
		script := fmt.Sprintf("%s %s; ip link set %s netns %s", bin, iface, iface, to.name)
		if out, err := from.execEnv(env, "sh", "-c", script); err != nil {
			t.Fatalf("run %d: %v\n%s", i, err, out)
		}
		if _, err := to.exec("ip", "link", "show", "dev", iface); err != nil {
			t.Errorf("run %d: %s is not in %s after the move: %v", i, iface, to.name, err)
			continue
		}
		if err := startupUAPIGet(netnsSocket(iface)); err != nil {
			t.Errorf("run %d: the daemon of %s did not survive the move: %v", i, iface, err)
		}
	}
}

// startupUAPIGet asks the UAPI socket at path for get=1 and checks the
// answer ends with errno=0.
func startupUAPIGet(path string) error {
	c, err := net.DialTimeout("unix", path, 5*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte("get=1\n\n")); err != nil {
		return err
	}
	sc := bufio.NewScanner(c)
	for sc.Scan() {
		if line := sc.Text(); strings.HasPrefix(line, "errno=") {
			if line != "errno=0" {
				return fmt.Errorf("get=1 answered %s", line)
			}
			return nil
		}
	}
	return fmt.Errorf("get=1 got no errno line: %v", sc.Err())
}
