package main

import (
	"bytes"
	"strings"
	"testing"
)

// TestPeerDBURL: WGHOOKS_PEER_DB takes a postgres:// URL; one that does
// not parse stops the start with an error naming it, its password
// redacted, and the settings listing never prints the password.
func TestPeerDBURL(t *testing.T) {
	d, _, err := testSettings(t, "wg7", map[string]string{"WGHOOKS_PEER_DB": "postgres://wg:s3cretpw@db.example/peers?sslmode=require"})
	if err != nil {
		t.Fatal(err)
	}
	if d.pg == nil || d.store != nil || d.cfg.JIT.Provider != d.pg {
		t.Fatalf("a postgres URL did not choose the PostgreSQL store: pg %v, sqlite %v", d.pg, d.store)
	}
	for _, bad := range []string{
		"postgres://wg:s3cretpw@db.example:notaport/peers",
		"postgresql://wg:s3cretpw@db.example/peers?sslmode=bogus",
	} {
		_, _, err := testSettings(t, "wg7", map[string]string{"WGHOOKS_PEER_DB": bad})
		if err == nil {
			t.Fatalf("%s accepted", bad)
		}
		if strings.Contains(err.Error(), "s3cretpw") || !strings.Contains(err.Error(), "WGHOOKS_PEER_DB") || !strings.Contains(err.Error(), "xxxxx") {
			t.Fatalf("error %q: want it to name the setting and the URL, password redacted", err)
		}
	}
	var out, errOut bytes.Buffer
	environ := []string{envConfigDir + "=" + t.TempDir(), "WGHOOKS_PEER_DB=postgres://wg:s3cretpw@db.example/peers"}
	if code := printSettings(&out, &errOut, "wg7", environ); code != exitSetupSuccess {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	if strings.Contains(out.String(), "s3cretpw") || !strings.Contains(out.String(), "postgres://wg:xxxxx@db.example/peers") {
		t.Fatalf("settings listing:\n%s", out.String())
	}
}
