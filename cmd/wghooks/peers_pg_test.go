package main

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wghooks/wghooks/hooks/pgstore"
	"github.com/wghooks/wghooks/internal/pgtest"
)

// TestPeersPostgresCommands drives migrate, add, list, import and remove
// against a real PostgreSQL store: the same commands as SQLite's.
func TestPeersPostgresCommands(t *testing.T) {
	srv := pgtest.New(t)
	url := srv.URL("postgres")
	dir := t.TempDir()
	run := func(args ...string) (string, error) {
		var out bytes.Buffer
		err := runPeers(dir, append([]string{"-db", url}, args...), &out)
		return out.String(), err
	}
	const k1 = "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE="
	const k2 = "AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI="
	// Before migrate: a clear error saying what to do.
	if _, err := run("add", "wg9", k1); !errors.Is(err, pgstore.ErrNoSchema) || !strings.Contains(err.Error(), "migrate") {
		t.Fatalf("add without schema: %v", err)
	}
	if out, err := run("migrate"); err != nil || !strings.Contains(out, "applied schema versions") {
		t.Fatalf("migrate: %q, %v", out, err)
	}
	if out, err := run("migrate"); err != nil || !strings.Contains(out, "nothing to do") {
		t.Fatalf("second migrate: %q, %v", out, err)
	}
	if _, err := run("add", "wg9", k1, "allowed-ips", "198.18.0.2/32", "persistent-keepalive", "25", "comment", "laptop"); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "showconf")
	os.WriteFile(conf, []byte("[Peer]\nPublicKey = "+k2+"\nAllowedIPs = 198.18.0.3/32\n"), 0o600)
	if out, err := run("import", "wg9", conf); err != nil || !strings.Contains(out, "imported 1 peers") {
		t.Fatalf("import: %q, %v", out, err)
	}
	if _, err := run("add", "wg9", k2, "allowed-ips", "198.18.0.3/32", "enabled", "false"); err != nil {
		t.Fatal(err)
	}
	out, err := run("list", "wg9")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, k1+"  -          allowed-ips 198.18.0.2/32  keepalive 25s  # laptop") ||
		!strings.Contains(out, k2+"  disabled") || !strings.Contains(out, "2 peers in postgres://") {
		t.Fatalf("list:\n%s", out)
	}
	if out, err := run("remove", "wg9", k1); err != nil || !strings.Contains(out, "every gateway") {
		t.Fatalf("remove: %q, %v", out, err)
	}
	if _, err := run("remove", "wg9", k1); err == nil {
		t.Fatal("second remove of the same key succeeded")
	}
	// A URL that does not parse: refused, password redacted.
	var buf bytes.Buffer
	err = runPeers(dir, []string{"-db", "postgres://wg:s3cretpw@db:nope/x", "list", "wg9"}, &buf)
	if err == nil || strings.Contains(err.Error(), "s3cretpw") {
		t.Fatalf("bad URL: %v", err)
	}
}
