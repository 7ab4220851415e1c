package tests

// The control socket and the files wghooks writes (hardening): limits on
// connections and on what one transaction may make the daemon hold, and
// the permissions of the socket, the state file and the peer store.

import (
	"bufio"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	wgipc "golang.zx2c4.com/wireguard/ipc"

	"wghooks/device"
	"wghooks/hooks/sqlstore"
	"wghooks/internal/testkit"
	"wghooks/ipc"
	"wghooks/uapi"
)

// hardLines is an endless "a=1\n" stream of n bytes, then a blank line.
type hardLines struct{ left int }

func (h *hardLines) Read(p []byte) (int, error) {
	if h.left <= 0 {
		if h.left == 0 {
			h.left--
			p[0] = '\n'
			return 1, nil
		}
		return 0, io.EOF
	}
	n := min(len(p), h.left) &^ 3
	if n == 0 {
		n = min(len(p), h.left)
	}
	for i := 0; i+4 <= n; i += 4 {
		copy(p[i:], "a=1\n")
	}
	h.left -= n
	return n, nil
}

// TestHardeningUAPIOversizedTransaction: a client that sends a set
// transaction past MaxTransaction in short lines (16 MiB of "a=1") gets
// EPROTO, is still served afterwards, and makes the daemon hold a
// bounded amount of memory meanwhile; another client's operations all
// succeed during it; the device is unchanged.
func TestHardeningUAPIOversizedTransaction(t *testing.T) {
	checkLeaks(t)
	_, d := newWghooksNode(t, "198.18.12.1", device.Config{HA: device.HAConfig{FlowEscapeOff: true}})
	dir, iface := testkit.ServeUAPI(t, d, "hardu0", nil), "hardu0"
	before := hardHeap()
	getBefore, _ := d.IpcGet()

	var peak atomic.Uint64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { // heap sampler
		defer wg.Done()
		var m runtime.MemStats
		for {
			runtime.ReadMemStats(&m)
			if m.HeapAlloc > peak.Load() {
				peak.Store(m.HeapAlloc)
			}
			select {
			case <-stop:
				return
			case <-time.After(10 * time.Millisecond):
			}
		}
	}()
	var others, othersFailed atomic.Int64
	go func() { // another client, busy all along
		defer wg.Done()
		c, err := ipc.Dial(dir, iface)
		if err != nil {
			othersFailed.Add(1)
			return
		}
		defer c.Close()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if err := c.Set(fmt.Sprintf("fwmark=%d", i%2)); err != nil {
				othersFailed.Add(1)
			}
			if _, err := c.Get(); err != nil {
				othersFailed.Add(1)
			}
			others.Add(1)
			time.Sleep(time.Millisecond)
		}
	}()

	c, err := net.Dial("unix", ipc.SocketPath(dir, iface))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Minute))
	r := bufio.NewReader(c)
	// 4M lines: past MaxTransaction, which counts what holding each line
	// costs besides its bytes.
	size := 16 << 20
	go func() {
		c.Write([]byte("set=1\n"))
		io.Copy(c, bufio.NewReaderSize(&hardLines{left: size}, 64<<10))
	}()
	reply, err := testkit.Reply(r)
	if err != nil || reply != "errno=-71\n" {
		t.Fatalf("reply to a %d MiB transaction: %q, %v; want errno=-71", size>>20, reply, err)
	}
	c.Write([]byte("get=1\n\n"))
	if got, err := testkit.Reply(r); err != nil || !strings.HasSuffix(got, "errno=0\n") {
		t.Fatalf("get after the oversized set: %q, %v", got, err)
	}
	close(stop)
	wg.Wait()
	if othersFailed.Load() != 0 || others.Load() == 0 {
		t.Errorf("the other client: %d operations, %d failed", others.Load(), othersFailed.Load())
	}
	d.IpcSet("fwmark=0")
	if got, _ := d.IpcGet(); got != getBefore {
		t.Errorf("device changed:\n%s\nwant\n%s", got, getBefore)
	}
	grew := float64(peak.Load()) - before
	t.Logf("a %d MiB transaction of %d-byte lines: heap %.0f MiB before, peak %.0f MiB (+%.0f MiB); the other client did %d set+get",
		size>>20, 4, before/(1<<20), float64(peak.Load())/(1<<20), grew/(1<<20), others.Load())
	// What one transaction may make the daemon hold: its bytes, read
	// twice (server, device), with what holding them line by line costs,
	// and garbage not yet collected.
	if limit := float64(4 * uapi.MaxTransaction); grew > limit {
		t.Errorf("heap grew by %.0f MiB for one transaction, more than %.0f MiB", grew/(1<<20), limit/(1<<20))
	}
	eventually(t, 10*time.Second, "the heap to come back", func() bool { return hardHeap() < before+16<<20 })
}

// TestHardeningUAPITooManyClients: past ipc.MaxConns connections, new
// ones are closed at once; the connections already open keep working;
// once they go, new clients are served again.
func TestHardeningUAPITooManyClients(t *testing.T) {
	checkLeaks(t)
	_, d := newWghooksNode(t, "198.18.12.1", device.Config{HA: device.HAConfig{FlowEscapeOff: true}})
	dir, iface := testkit.ServeUAPI(t, d, "hardu0", nil), "hardu0"
	path := ipc.SocketPath(dir, iface)
	var held []net.Conn
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	for i := 0; i < ipc.MaxConns; i++ {
		c, err := net.Dial("unix", path)
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
		c.SetDeadline(time.Now().Add(10 * time.Second))
		c.Write([]byte("get=1\n\n")) // proves the server took it
		if got, err := testkit.Reply(bufio.NewReader(c)); err != nil || !strings.HasSuffix(got, "errno=0\n") {
			t.Fatalf("client %d: %q, %v", i, got, err)
		}
	}
	for i := 0; i < 8; i++ {
		c, err := net.Dial("unix", path)
		if err != nil {
			continue // refused outright is fine too
		}
		c.SetDeadline(time.Now().Add(10 * time.Second))
		c.Write([]byte("get=1\n\n"))
		if n, err := c.Read(make([]byte, 1)); err == nil {
			t.Errorf("connection %d past the limit was served (%d bytes)", ipc.MaxConns+i, n)
		}
		c.Close()
	}
	// The held ones still work.
	for i, c := range held {
		c.Write([]byte("get=1\n\n"))
		if got, err := testkit.Reply(bufio.NewReader(c)); err != nil || !strings.HasSuffix(got, "errno=0\n") {
			t.Fatalf("held client %d after the overflow: %q, %v", i, got, err)
		}
	}
	for _, c := range held {
		c.Close()
	}
	held = nil
	eventually(t, 5*time.Second, "a new client to be served once the others left", func() bool {
		cl, err := ipc.Dial(dir, iface)
		if err != nil {
			return false
		}
		defer cl.Close()
		_, err = cl.Get()
		return err == nil
	})
}

// TestHardeningFilePermissions: what wghooks writes is its owner's only,
// whatever the umask: the state file (0600, its directory 0700), the
// peer store and its WAL files (0600, directory 0700) as `wghooks peers
// add` creates them; the UAPI socket and its directory keep upstream's
// modes (socket 0700: only root connects; directory 0755).
func TestHardeningFilePermissions(t *testing.T) {
	checkLeaks(t)
	mode := func(path string) os.FileMode {
		t.Helper()
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		return fi.Mode().Perm()
	}

	// State file, written by a device into a directory it creates.
	state := filepath.Join(t.TempDir(), "state", "wg0.json")
	client := newKeypair(t)
	_, d := newWghooksNode(t, "198.18.12.1", device.Config{
		Restart: device.RestartConfig{StateFile: state, StateInterval: -1},
		HA:      device.HAConfig{FlowEscapeOff: true},
	})
	if err := d.IpcSet(uapiCfg("public_key", client.pubHex(), "endpoint", "127.0.0.1:9", "allowed_ip", "198.18.12.2/32")); err != nil {
		t.Fatal(err)
	}
	if err := d.SaveState(); err != nil {
		t.Fatal(err)
	}
	if m := mode(state); m != 0o600 {
		t.Errorf("state file mode %v, want 0600", m)
	}
	if m := mode(filepath.Dir(state)); m != 0o700 {
		t.Errorf("state directory mode %v, want 0700", m)
	}

	// Peer store, created by the CLI while a daemon holds it open (so the
	// WAL files exist).
	bin := netnsBuild(t, "wghooks/cmd/wghooks", "wghooks")
	dir := t.TempDir()
	db := filepath.Join(dir, "lib", "wg0.db")
	add := func(k keypair, ip string) {
		out, err := exec.Command(bin, "-socket-dir", dir, "peers", "-db", db, "add", "wg0",
			base64.StdEncoding.EncodeToString(k.pub[:]), "allowed-ips", ip).CombinedOutput()
		if err != nil {
			t.Fatalf("peers add: %v\n%s", err, out)
		}
	}
	add(newKeypair(t), "198.18.12.3/32")
	store, err := sqlstore.Open(db)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	add(newKeypair(t), "198.18.12.4/32")
	if _, err := store.Count(context.Background()); err != nil {
		t.Fatal(err)
	}
	if m := mode(filepath.Dir(db)); m != 0o700 {
		t.Errorf("store directory mode %v, want 0700", m)
	}
	for _, f := range []string{db, db + "-wal", db + "-shm"} {
		if m := mode(f); m != 0o600 {
			t.Errorf("%s mode %v, want 0600", filepath.Base(f), m)
		}
	}

	// UAPI socket in a directory of our own: upstream's modes.
	sockDir := filepath.Join(t.TempDir(), "run")
	ln, err := ipc.Listen(sockDir, "hardp0")
	if err != nil {
		t.Fatal(err)
	}
	if m := mode(sockDir); m != 0o755 {
		t.Errorf("socket directory mode %v, want 0755 as upstream's", m)
	}
	if m := mode(ipc.SocketPath(sockDir, "hardp0")); m != 0o700 {
		t.Errorf("socket mode %v, want 0700 as upstream's", m)
	}
	hardCloseUAPI(ln)

	// In the real directory, next to one upstream creates itself.
	if os.Geteuid() != 0 {
		t.Log("not root: skipping the comparison in /var/run/wireguard")
		return
	}
	ours, theirs := fmt.Sprintf("hpw%d", os.Getpid()), fmt.Sprintf("hpu%d", os.Getpid())
	ln, err = ipc.Listen("", ours)
	if err != nil {
		t.Fatal(err)
	}
	defer hardCloseUAPI(ln)
	f, err := wgipc.UAPIOpen(theirs)
	if err != nil {
		t.Fatal(err)
	}
	defer os.Remove(ipc.SocketPath("", theirs))
	defer f.Close()
	if a, b := mode(ipc.SocketPath("", ours)), mode(ipc.SocketPath("", theirs)); a != b || a&0o077 != 0 {
		t.Errorf("socket mode %v, upstream's %v", a, b)
	}
	if m := mode(ipc.DefaultDir); m != 0o755 {
		t.Errorf("%s mode %v, want 0755", ipc.DefaultDir, m)
	}
}

// hardCloseUAPI closes a UAPI listener nobody accepts on. Upstream's
// listener (DefaultDir) reports its end once from each of its two
// goroutines; the Accepts let both go.
func hardCloseUAPI(ln net.Listener) {
	ln.Close()
	if _, ok := ln.(*wgipc.UAPIListener); ok {
		ln.Accept()
		ln.Accept()
	}
}
