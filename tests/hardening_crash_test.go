package tests

// Crash safety (hardening): a process that writes the state file (on
// demand, on drain, periodically) or the SQLite peer store is killed with
// SIGKILL at random points; the next start must never see a torn file or
// a corrupt store, and must lose at most what was learned after the last
// completed write.

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	mrand "math/rand/v2"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/curve25519"

	"github.com/wghooks/wghooks/device"
	"github.com/wghooks/wghooks/hooks"
	"github.com/wghooks/wghooks/hooks/sqlstore"
	"github.com/wghooks/wghooks/internal/testkit"
)

// Environment of the crash child (TestHardeningCrashChild).
const (
	hardCrashRole   = "WGTEST_HARDENING_CRASH_ROLE" // "save" or "drain"
	hardCrashState  = "WGTEST_HARDENING_CRASH_STATE"
	hardCrashServer = "WGTEST_HARDENING_CRASH_SERVER" // private key, hex
	hardCrashClient = "WGTEST_HARDENING_CRASH_CLIENT" // private key, hex
)

// hardKeypair makes a testkit.Keypair from a hex private key.
func hardKeypair(t testing.TB, privHex string) testkit.Keypair {
	t.Helper()
	b, err := hex.DecodeString(privHex)
	if err != nil || len(b) != 32 {
		t.Fatalf("bad key %q", privHex)
	}
	k := testkit.Keypair{}
	copy(k.Priv[:], b)
	pub, err := curve25519.X25519(k.Priv[:], curve25519.Basepoint)
	if err != nil {
		t.Fatal(err)
	}
	copy(k.Pub[:], pub)
	return k
}

// TestHardeningCrashChild is the process TestHardeningCrashSafety kills:
// a wghooks server with a state file (rewritten every 10 ms) and a real
// upstream client that roams to a new port again and again. After each
// roam has been learned it saves the state (role "save") or drains and
// undrains (role "drain") and prints "ACK i port". It first prints what
// the state file gave back at start ("RESTORED endpoint").
func TestHardeningCrashChild(t *testing.T) {
	role := os.Getenv(hardCrashRole)
	if role == "" {
		t.Skip("runs only as TestHardeningCrashSafety's child")
	}
	serverKey := hardKeypair(t, os.Getenv(hardCrashServer))
	clientKey := hardKeypair(t, os.Getenv(hardCrashClient))
	server, sd := testkit.NewWghooks(t, "198.18.9.1", device.Config{
		Restart: device.RestartConfig{StateFile: os.Getenv(hardCrashState), StateInterval: 10 * time.Millisecond},
		HA:      device.HAConfig{FlowEscapeOff: true},
	})
	if err := sd.IpcSet(testkit.UAPI("private_key", serverKey.PrivHex())); err != nil {
		t.Fatal(err)
	}
	server.Key = serverKey
	if err := sd.IpcSet(testkit.UAPI("public_key", clientKey.PubHex(), "allowed_ip", "198.18.9.2/32")); err != nil {
		t.Fatal(err)
	}
	fmt.Printf("RESTORED %s\n", testkit.PeerValue(t, sd, clientKey.Pub, "endpoint"))
	testkit.ServeEcho(t, server)
	client := newJITClient(t, "198.18.9.2", server)
	if err := client.dev.IpcSet(testkit.UAPI("private_key", clientKey.PrivHex())); err != nil {
		t.Fatal(err)
	}
	client.Key = clientKey

	base := 20000 + mrand.IntN(30000)
	deadline := time.Now().Add(time.Minute)
	for i := 0; i < 5000 && time.Now().Before(deadline); i++ {
		port := base + i
		if err := client.dev.IpcSet(testkit.UAPI("listen_port", strconv.Itoa(port))); err != nil {
			continue // taken
		}
		fmt.Printf("TRY %d %d\n", i, port)
		if err := client.Node.Echo(server.Addr, 2*time.Second); err != nil {
			continue
		}
		if ep := testkit.PeerValue(t, sd, clientKey.Pub, "endpoint"); ep != fmt.Sprintf("127.0.0.1:%d", port) {
			continue
		}
		var err error
		if role == "drain" {
			err = sd.DrainPeers()
			sd.Undrain()
		} else {
			err = sd.SaveState()
		}
		if err != nil {
			t.Fatal(err)
		}
		fmt.Printf("ACK %d %d\n", i, port)
	}
}

// hardCrashRun is one run of the crash child.
type hardCrashRun struct {
	cmd      *exec.Cmd
	mu       sync.Mutex
	restored string
	tried    map[int]int // iteration -> port
	lastAck  int         // iteration, -1 before the first
	acks     int
	firstAck chan struct{}
	done     chan struct{}
	stderr   strings.Builder
}

func startHardCrashChild(t *testing.T, env ...string) *hardCrashRun {
	t.Helper()
	r := &hardCrashRun{tried: map[int]int{}, lastAck: -1, firstAck: make(chan struct{}), done: make(chan struct{})}
	r.cmd = exec.Command(os.Args[0], "-test.run", "^TestHardeningCrashChild$", "-test.count", "1", "-test.timeout", "2m")
	r.cmd.Env = append(os.Environ(), env...)
	r.cmd.Stderr = &r.stderr
	out, err := r.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		r.cmd.Process.Kill()
		<-r.done
	})
	go func() {
		defer close(r.done)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			r.mu.Lock()
			switch {
			case len(f) >= 1 && f[0] == "RESTORED":
				r.restored = strings.Join(f[1:], "")
			case len(f) == 3 && f[0] == "TRY":
				i, _ := strconv.Atoi(f[1])
				r.tried[i], _ = strconv.Atoi(f[2])
			case len(f) == 3 && f[0] == "ACK":
				r.lastAck, _ = strconv.Atoi(f[1])
				r.acks++
				if r.acks == 1 {
					close(r.firstAck)
				}
			}
			r.mu.Unlock()
		}
		r.cmd.Wait()
	}()
	return r
}

// kill waits for the first completed write, lets the child run for up to
// maxDelay more, and kills it with SIGKILL.
func (r *hardCrashRun) kill(t *testing.T, maxDelay time.Duration) {
	t.Helper()
	select {
	case <-r.firstAck:
	case <-r.done:
		t.Fatalf("crash child ended before its first write:\n%s", r.stderr.String())
	case <-time.After(30 * time.Second):
		t.Fatalf("crash child made no write in 30 s:\n%s", r.stderr.String())
	}
	time.Sleep(time.Duration(mrand.Int64N(int64(maxDelay))))
	r.cmd.Process.Signal(syscall.SIGKILL)
	<-r.done
}

// hardStateFile is the state file's format, read strictly.
type hardStateFile struct {
	Version   int       `json:"version"`
	PublicKey string    `json:"public_key"`
	Written   time.Time `json:"written"`
	Peers     []struct {
		PublicKey     string    `json:"public_key"`
		Endpoint      string    `json:"endpoint"`
		LastHandshake time.Time `json:"last_handshake"`
	} `json:"peers"`
}

// TestHardeningCrashSafety kills the state-writing process with SIGKILL
// at random points, 8 times while it saves on demand and 8 times while it
// drains (each on top of a 10 ms periodic writer). After every kill the
// state file is whole and names the client at the port of the last
// acknowledged write or a later one; the next process restores exactly
// that endpoint; no file is ever rejected. Finally a fresh device
// restores it too.
func TestHardeningCrashSafety(t *testing.T) {
	if testing.Short() {
		t.Skip("kills child processes; skipped with -short")
	}
	testkit.CheckLeaks(t)
	for _, role := range []string{"save", "drain"} {
		t.Run(role, func(t *testing.T) {
			dir := t.TempDir()
			statePath := filepath.Join(dir, "wg0.json")
			serverKey, clientKey := testkit.NewKeypair(), testkit.NewKeypair()
			env := []string{hardCrashRole + "=" + role, hardCrashState + "=" + statePath,
				hardCrashServer + "=" + serverKey.PrivHex(), hardCrashClient + "=" + clientKey.PrivHex()}
			onDisk := "" // endpoint in the file after the previous kill
			writes := 0
			const kills = 8
			for k := 0; k < kills; k++ {
				r := startHardCrashChild(t, env...)
				r.kill(t, 300*time.Millisecond)
				r.mu.Lock()
				writes += r.acks
				restored, lastAck, acks := r.restored, r.lastAck, r.acks
				allowed := map[string]bool{}
				for i, port := range r.tried {
					if i >= lastAck {
						allowed[fmt.Sprintf("127.0.0.1:%d", port)] = true
					}
				}
				r.mu.Unlock()
				if restored != onDisk {
					t.Errorf("kill %d: the process started from %q, but the file held %q", k, restored, onDisk)
				}
				f := hardReadState(t, statePath, serverKey, clientKey)
				if !allowed[f.Peers[0].Endpoint] {
					t.Errorf("kill %d: file names %s, not the last acknowledged write's endpoint or a later one (%v); %d writes acknowledged",
						k, f.Peers[0].Endpoint, allowed, acks)
				}
				onDisk = f.Peers[0].Endpoint
				if _, err := os.Stat(statePath + ".rejected"); err == nil {
					t.Fatalf("kill %d: a state file was rejected at start", k)
				}
			}
			leftovers, _ := filepath.Glob(filepath.Join(dir, ".wg0.json.tmp-*"))
			t.Logf("%d kills after %d acknowledged writes: the file always whole; %d temporary files left by writes cut short",
				kills, writes, len(leftovers))

			// A fresh process (in this one) restores the endpoint too.
			_, sd := testkit.NewWghooks(t, "198.18.9.1", device.Config{
				Restart: device.RestartConfig{StateFile: statePath, StateInterval: -1},
				HA:      device.HAConfig{FlowEscapeOff: true},
			})
			if err := sd.IpcSet(testkit.UAPI("private_key", serverKey.PrivHex())); err != nil {
				t.Fatal(err)
			}
			if err := sd.IpcSet(testkit.UAPI("public_key", clientKey.PubHex(), "allowed_ip", "198.18.9.2/32")); err != nil {
				t.Fatal(err)
			}
			if ep := testkit.PeerValue(t, sd, clientKey.Pub, "endpoint"); ep != onDisk {
				t.Errorf("a fresh device restored %q, want %q", ep, onDisk)
			}
		})
	}
}

// hardReadState reads the state file strictly: whole JSON, version 1,
// for the server's key, naming the client once with an endpoint and a
// handshake.
func hardReadState(t *testing.T, path string, server, client testkit.Keypair) hardStateFile {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("state file after a kill: %v", err)
	}
	var f hardStateFile
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil || dec.More() {
		t.Fatalf("torn state file (%v):\n%s", err, data)
	}
	if f.Version != 1 || f.PublicKey != base64.StdEncoding.EncodeToString(server.Pub[:]) || f.Written.IsZero() {
		t.Fatalf("state file header wrong:\n%s", data)
	}
	if len(f.Peers) != 1 || f.Peers[0].PublicKey != base64.StdEncoding.EncodeToString(client.Pub[:]) || f.Peers[0].LastHandshake.IsZero() {
		t.Fatalf("state file peers wrong:\n%s", data)
	}
	if _, err := netip.ParseAddrPort(f.Peers[0].Endpoint); err != nil {
		t.Fatalf("state file endpoint %q: %v", f.Peers[0].Endpoint, err)
	}
	return f
}

// TestHardeningCrashStore kills `wghooks peers add` and `wghooks peers
// import` (5,000 peers in one transaction) with SIGKILL at random points,
// 12 times, while a daemon-side store handle stays open. After every
// kill the database passes SQLite's integrity check, every add and import
// that reported success is there, a killed import is there whole or not
// at all, and the open handle keeps answering.
func TestHardeningCrashStore(t *testing.T) {
	if testing.Short() {
		t.Skip("kills child processes; skipped with -short")
	}
	testkit.CheckLeaks(t)
	bin := netnsBuild(t, "github.com/wghooks/wghooks/cmd/wghooks", "wghooks")
	dir := t.TempDir()
	db := filepath.Join(dir, "store", "peers.db")
	run := func(args ...string) *exec.Cmd {
		cmd := exec.Command(bin, append([]string{"-socket-dir", dir, "peers", "-db", db}, args...)...)
		return cmd
	}
	acked := map[hooks.PublicKey]netip.Prefix{}
	next := 0
	addr := func(i int) netip.Prefix {
		return netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 18, byte(i >> 8), byte(i)}), 32)
	}
	add := func() (*exec.Cmd, hooks.PublicKey, netip.Prefix) {
		k := testkit.NewKeypair()
		p := addr(next)
		next++
		return run("add", "hardcrash0", base64.StdEncoding.EncodeToString(k.Pub[:]), "allowed-ips", p.String()), k.Pub, p
	}
	// A few adds that complete: the store exists, and how long one takes.
	start := time.Now()
	for i := 0; i < 3; i++ {
		cmd, k, p := add()
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("peers add: %v\n%s", err, out)
		}
		acked[k] = p
	}
	typical := time.Since(start) / 3
	importConf := func(k int) (string, []hooks.PublicKey, []netip.Prefix) {
		var conf strings.Builder
		var keys []hooks.PublicKey
		var prefixes []netip.Prefix
		for i := 0; i < 5000; i++ {
			var key hooks.PublicKey // a store keeps any 32 bytes
			randRead(key[:])
			p := addr(next)
			next++
			keys, prefixes = append(keys, key), append(prefixes, p)
			fmt.Fprintf(&conf, "[Peer]\nPublicKey = %s\nAllowedIPs = %s\n\n", key, p)
		}
		file := filepath.Join(dir, fmt.Sprintf("import%d.conf", k))
		if err := os.WriteFile(file, []byte(conf.String()), 0o600); err != nil {
			t.Fatal(err)
		}
		return file, keys, prefixes
	}
	file, keys, prefixes := importConf(-1)
	start = time.Now()
	if out, err := run("import", "hardcrash0", file).CombinedOutput(); err != nil {
		t.Fatalf("peers import: %v\n%s", err, out)
	}
	typicalImport := time.Since(start)
	for i, k := range keys {
		acked[k] = prefixes[i]
	}
	daemon, err := sqlstore.Open(db)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { daemon.Close() })

	const kills = 12
	killedImports := 0
	for k := 0; k < kills; k++ {
		var cmd *exec.Cmd
		var keys []hooks.PublicKey
		var prefixes []netip.Prefix
		delay := time.Duration(mrand.Int64N(int64(typical * 3 / 2)))
		if k%3 == 2 {
			// An import of 5,000 peers: one transaction, killed midway.
			var file string
			file, keys, prefixes = importConf(k)
			cmd = run("import", "hardcrash0", file)
			// Past start-up, into the transaction (or just after it).
			delay = typical + time.Duration(mrand.Int64N(int64(typicalImport)))
		} else {
			var kp hooks.PublicKey
			var p netip.Prefix
			cmd, kp, p = add()
			keys, prefixes = []hooks.PublicKey{kp}, []netip.Prefix{p}
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(delay)
		cmd.Process.Signal(syscall.SIGKILL)
		err := cmd.Wait()
		completed := err == nil
		// Whole or not at all; complete if it said so.
		added := hardCheckStore(t, db) - len(acked)
		if added != 0 && added != len(keys) {
			t.Fatalf("kill %d: %d of %d peers of one transaction are stored: it was torn", k, added, len(keys))
		}
		if completed && added != len(keys) {
			t.Fatalf("kill %d: the command reported success but %d of %d peers are stored", k, added, len(keys))
		}
		if len(keys) > 1 && !completed {
			killedImports++
		}
		// The daemon's open handle sees the same, peer by peer (a sample).
		for _, i := range hardSample(len(keys), 20) {
			got, err := daemon.LookupPeer(context.Background(), keys[i])
			switch {
			case added == 0 && err != hooks.ErrUnknownPeer:
				t.Fatalf("kill %d: peer of a transaction that did not happen: %v, %v", k, got.AllowedIPs, err)
			case added > 0 && (err != nil || len(got.AllowedIPs) != 1 || got.AllowedIPs[0] != prefixes[i]):
				t.Fatalf("kill %d: stored peer reads %v, %v; want %v", k, got.AllowedIPs, err, prefixes[i])
			}
		}
		if added > 0 {
			for i, key := range keys {
				acked[key] = prefixes[i]
			}
		}
	}
	all := make([]hooks.PublicKey, 0, len(acked))
	for key := range acked {
		all = append(all, key)
	}
	for _, i := range hardSample(len(all), 100) {
		got, err := daemon.LookupPeer(context.Background(), all[i])
		if err != nil || len(got.AllowedIPs) != 1 || got.AllowedIPs[0] != acked[all[i]] {
			t.Fatalf("stored peer %s: %v, %v", all[i], got.AllowedIPs, err)
		}
	}
	t.Logf("%d kills (%d imports cut short; an add takes %v, an import %v), %d peers stored, integrity ok after each",
		kills, killedImports, typical.Round(time.Millisecond), typicalImport.Round(time.Millisecond), len(acked))
}

// hardCheckStore runs SQLite's integrity check on path through a new
// connection, as the next process would open it, and returns the number
// of peers stored.
func hardCheckStore(t *testing.T, path string) int {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var res string
	if err := db.QueryRow("PRAGMA integrity_check").Scan(&res); err != nil || res != "ok" {
		t.Fatalf("integrity check after a kill: %q, %v", res, err)
	}
	var n int
	if err := db.QueryRow("SELECT count(*) FROM peers").Scan(&n); err != nil {
		t.Fatalf("failed to count peers after a kill: %v", err)
	}
	return n
}

// hardSample returns up to k indices of 0..n-1: the first, the last and
// random ones between.
func hardSample(n, k int) []int {
	if n <= k {
		out := make([]int, n)
		for i := range out {
			out[i] = i
		}
		return out
	}
	out := []int{0, n - 1}
	for len(out) < k {
		out = append(out, mrand.IntN(n))
	}
	return out
}
