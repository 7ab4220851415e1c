package main

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/wghooks/wghooks/hooks"
	"github.com/wghooks/wghooks/hooks/pgstore"
	"github.com/wghooks/wghooks/internal/pgtest"
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

// TestPeerDBPostgres: the daemon's PostgreSQL store refuses to start on a
// database without the schema, saying to migrate; migrated, it serves
// lookups, and its watch starts once it is open.
func TestPeerDBPostgres(t *testing.T) {
	srv := pgtest.New(t)
	url := srv.URL("postgres")
	d, _, err := testSettings(t, "wg7", map[string]string{"WGHOOKS_PEER_DB": url})
	if err != nil {
		t.Fatal(err)
	}
	early, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := d.cfg.JIT.Provider.LookupPeer(early, hooks.PublicKey{1}); !errors.Is(err, errPGNotOpen) {
		t.Fatalf("lookup before the store opened: %v", err)
	}
	if _, err := d.startPeerStore(nil, "wg7", t.Logf); !errors.Is(err, pgstore.ErrNoSchema) || !strings.Contains(err.Error(), "wghooks peers migrate") {
		t.Fatalf("start on a database without the schema: %v; want it refused, saying to migrate", err)
	}

	if _, err := pgstore.Migrate(context.Background(), url); err != nil {
		t.Fatal(err)
	}
	d, _, err = testSettings(t, "wg7", map[string]string{"WGHOOKS_PEER_DB": url})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	watched := make(chan error, 1)
	go func() {
		watched <- d.cfg.JIT.Provider.(hooks.ChangeNotifier).WatchChanges(ctx, func([]hooks.PublicKey) {}, func() {})
	}()
	stop, err := d.startPeerStore(nil, "wg7", t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	defer cancel()
	if _, err := d.cfg.JIT.Provider.LookupPeer(context.Background(), hooks.PublicKey{1}); !errors.Is(err, hooks.ErrUnknownPeer) {
		t.Fatalf("lookup of an unknown key: %v", err)
	}
	cancel()
	if err := <-watched; !errors.Is(err, context.Canceled) {
		t.Fatalf("watch ended with %v", err)
	}
}
