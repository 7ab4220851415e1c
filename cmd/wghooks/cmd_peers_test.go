package main

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/wghooks/wghooks/ipc"
	"github.com/wghooks/wghooks/uapi"
)

// TestPeersStoreCommands drives add, list, import and remove against a
// store with no daemon running.
func TestPeersStoreCommands(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "store", "peers.db")
	run := func(args ...string) (string, error) {
		var out bytes.Buffer
		err := runPeers(dir, append([]string{"-db", db}, args...), &out)
		return out.String(), err
	}
	const k1 = "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE="
	const k2 = "AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI="
	if _, err := run("list", "wg9"); err == nil {
		t.Fatal("list of a missing store succeeded")
	}
	if _, err := run("add", "wg9", k1, "allowed-ips", "198.18.0.2/32", "persistent-keepalive", "25", "comment", "laptop"); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "showconf")
	os.WriteFile(conf, []byte("[Interface]\nListenPort = 51820\n\n[Peer]\nPublicKey = "+k2+"\nAllowedIPs = 198.18.0.3/32\n"), 0o600)
	if out, err := run("import", "wg9", conf); err != nil || !strings.Contains(out, "imported 1 peers") {
		t.Fatalf("import: %q, %v", out, err)
	}
	out, err := run("list", "wg9")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, k1+"  -          allowed-ips 198.18.0.2/32  keepalive 25s  # laptop") ||
		!strings.Contains(out, k2) || !strings.Contains(out, "2 peers in") {
		t.Fatalf("list:\n%s", out)
	}
	if out, err := run("remove", "wg9", k1); err != nil || !strings.Contains(out, "no daemon running") {
		t.Fatalf("remove: %q, %v", out, err)
	}
	if _, err := run("remove", "wg9", k1); err == nil {
		t.Fatal("second remove of the same key succeeded")
	}
	for _, bad := range [][]string{
		{"add", "wg9", "notakey"},
		{"add", "wg9", k1, "allowed-ips"},
		{"add", "wg9", k1, "colour", "red"},
		{"add", "wg9", k1, "endpoint", "example.com:1"},
		{"frobnicate", "wg9"},
		{"import", "wg9", filepath.Join(dir, "nope")},
	} {
		if _, err := run(bad...); err == nil {
			t.Errorf("%v succeeded", bad)
		}
	}
}

// TestPeersImportSplitsForget: the follow-up transaction that makes a
// running daemon forget the imported keys is cut under a bound; in one
// piece it exceeded the daemon's 64 MiB limit at about 600,000 peers.
// A fake daemon here refuses a transaction over 4 KiB as the real one
// refuses one over uapi.MaxTransaction.
func TestPeersImportSplitsForget(t *testing.T) {
	dir := t.TempDir()
	const limit = 4 << 10
	ln, err := net.Listen("unix", ipc.SocketPath(dir, "wg9"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	var forgot, transactions atomic.Int64
	served := make(chan struct{})
	go func() {
		defer close(served)
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		r := bufio.NewReader(c)
		for {
			lines, ended, err := uapi.ReadTransaction(r)
			if err != nil || !ended {
				return
			}
			size := 0
			for _, l := range lines {
				size += len(l) + 1
			}
			if size > limit {
				c.Write([]byte("errno=-71\n\n"))
				continue
			}
			transactions.Add(1)
			for _, l := range lines {
				if strings.HasPrefix(l, "wghooks_jit_forget=") {
					forgot.Add(1)
				}
			}
			c.Write([]byte("errno=0\n\n"))
		}
	}()

	const n = 500
	var conf strings.Builder
	for i := 1; i <= n; i++ {
		var k [32]byte
		binary.BigEndian.PutUint32(k[:], uint32(i))
		fmt.Fprintf(&conf, "[Peer]\nPublicKey = %s\nAllowedIPs = 198.18.%d.%d/32\n", base64.StdEncoding.EncodeToString(k[:]), i>>8, i&0xff)
	}
	file := filepath.Join(dir, "showconf")
	os.WriteFile(file, []byte(conf.String()), 0o600)
	var out bytes.Buffer
	p := &peersCmd{dir: dir, iface: "wg9", path: filepath.Join(dir, "peers.db"), out: &out, maxSet: limit}
	if err := p.importConf([]string{file}); err != nil {
		t.Fatalf("import: %v", err)
	}
	<-served // the CLI closed its connection
	if forgot.Load() != n || transactions.Load() < 2 {
		t.Errorf("the daemon was told to forget %d keys in %d transactions; want %d in several", forgot.Load(), transactions.Load(), n)
	}
	if maxSetBytes*4 > uapi.MaxTransaction {
		t.Errorf("maxSetBytes %d is not well under uapi.MaxTransaction %d", maxSetBytes, uapi.MaxTransaction)
	}
}

func TestSplitLines(t *testing.T) {
	lines := []string{"aaa", "bbb", "c", strings.Repeat("d", 20), "e"}
	got := splitLines(lines, 8)
	want := [][]string{{"aaa", "bbb"}, {"c"}, {strings.Repeat("d", 20)}, {"e"}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("splitLines = %q, want %q", got, want)
	}
	if got := splitLines(nil, 8); len(got) != 0 {
		t.Errorf("splitLines(nil) = %q", got)
	}
}
