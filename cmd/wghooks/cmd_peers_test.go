package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
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
