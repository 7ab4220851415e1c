package sqlstore

import (
	"context"
	"errors"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wghooks/wghooks/hooks"
)

func addrPeer(k byte, ep string, prefixes ...string) Peer {
	p := Peer{PeerConfig: hooks.PeerConfig{PublicKey: key(k)}}
	for _, s := range prefixes {
		p.AllowedIPs = append(p.AllowedIPs, netip.MustParsePrefix(s))
	}
	if ep != "" {
		p.Endpoint = netip.MustParseAddrPort(ep)
	}
	return p
}

func wantAddr(t *testing.T, s *Store, addr string, want hooks.PublicKey) {
	t.Helper()
	cfg, err := s.LookupAddr(context.Background(), netip.MustParseAddr(addr))
	if want == (hooks.PublicKey{}) {
		if !errors.Is(err, hooks.ErrUnknownPeer) {
			t.Fatalf("LookupAddr(%s) = %s, %v; want ErrUnknownPeer", addr, cfg.PublicKey, err)
		}
		return
	}
	if err != nil || cfg.PublicKey != want {
		t.Fatalf("LookupAddr(%s) = %s, %v; want %s", addr, cfg.PublicKey, err, want)
	}
}

func TestLookupAddr(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t)
	if err := s.Put(ctx,
		addrPeer(1, "198.51.100.1:51820", "198.18.0.2/32", "fd00::2/128"),
		addrPeer(2, "", "198.18.1.0/24"),
		addrPeer(3, "", "198.18.1.7/32"),
	); err != nil {
		t.Fatal(err)
	}
	cfg, err := s.LookupAddr(ctx, netip.MustParseAddr("198.18.0.2"))
	if err != nil || cfg.PublicKey != key(1) || cfg.Endpoint != netip.MustParseAddrPort("198.51.100.1:51820") || len(cfg.AllowedIPs) != 2 {
		t.Fatalf("LookupAddr = %+v, %v; want peer 1 with its endpoint and both allowed IPs", cfg, err)
	}
	wantAddr(t, s, "fd00::2", key(1))
	wantAddr(t, s, "::ffff:198.18.0.2", key(1))
	wantAddr(t, s, "198.18.1.9", key(2))
	wantAddr(t, s, "198.18.1.7", key(3)) // longest prefix wins
	wantAddr(t, s, "198.18.9.9", hooks.PublicKey{})
	wantAddr(t, s, "fd00::3", hooks.PublicKey{})

	// A peer stored again loses its old addresses.
	if err := s.Put(ctx, addrPeer(1, "", "198.18.0.3/32")); err != nil {
		t.Fatal(err)
	}
	wantAddr(t, s, "198.18.0.2", hooks.PublicKey{})
	wantAddr(t, s, "fd00::2", hooks.PublicKey{})
	wantAddr(t, s, "198.18.0.3", key(1))

	// A deleted peer's addresses fall back to the covering prefix.
	if ok, err := s.Delete(ctx, key(3)); err != nil || !ok {
		t.Fatalf("Delete = %v, %v", ok, err)
	}
	wantAddr(t, s, "198.18.1.7", key(2))

	// Two peers claiming the same longest prefix: an error naming both.
	if err := s.Put(ctx, addrPeer(4, "", "198.18.1.0/24")); err != nil {
		t.Fatal(err)
	}
	_, err = s.LookupAddr(ctx, netip.MustParseAddr("198.18.1.7"))
	if err == nil || errors.Is(err, hooks.ErrUnknownPeer) || !strings.Contains(err.Error(), key(2).String()) || !strings.Contains(err.Error(), key(4).String()) {
		t.Fatalf("LookupAddr of a doubly claimed address: %v; want an error naming both peers", err)
	}

	// A row changed behind Store's back leaves a stale index row, which is
	// skipped.
	k1 := key(1)
	if _, err := s.db.Exec(`UPDATE peers SET allowed_ips = '198.18.0.4/32' WHERE public_key = ?`, k1[:]); err != nil {
		t.Fatal(err)
	}
	wantAddr(t, s, "198.18.0.3", hooks.PublicKey{})
}

// TestLookupAddrUsesTheIndex checks the query plan: index probes, never a
// scan of the table, so a store of a million peers answers as fast as a
// small one.
func TestLookupAddrUsesTheIndex(t *testing.T) {
	s := openTemp(t)
	for _, n := range []int{33, 129} {
		args := addrCandidates(netip.MustParseAddr("198.18.0.1"))
		if n == 129 {
			args = addrCandidates(netip.MustParseAddr("fd00::1"))
		}
		if len(args) != n {
			t.Fatalf("%d candidates, want %d", len(args), n)
		}
		rows, err := s.db.Query(`EXPLAIN QUERY PLAN `+addrQuery(n), args...)
		if err != nil {
			t.Fatal(err)
		}
		var plan []string
		for rows.Next() {
			var id, parent, unused int
			var detail string
			if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
				t.Fatal(err)
			}
			plan = append(plan, detail)
		}
		rows.Close()
		for _, d := range plan {
			if strings.HasPrefix(d, "SCAN") {
				t.Fatalf("lookup plan scans a table: %q", plan)
			}
		}
	}
}

// TestLookupAddrIndexesOlderStores opens a store written before the
// address index existed: it is indexed once, at open.
func TestLookupAddrIndexesOlderStores(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "old.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	// Make it look old: peers written without index rows, version 0.
	k1, k2 := key(1), key(2)
	for _, q := range []struct {
		sql  string
		args []any
	}{
		{`INSERT INTO peers (public_key, allowed_ips) VALUES (?, '198.18.0.2/32, fd00::2')`, []any{k1[:]}},
		{`INSERT INTO peers (public_key, allowed_ips) VALUES (?, 'not a prefix')`, []any{k2[:]}},
		{`DELETE FROM peer_prefixes`, nil},
		{`PRAGMA user_version = 0`, nil},
	} {
		if _, err := s.db.Exec(q.sql, q.args...); err != nil {
			t.Fatal(err)
		}
	}
	wantAddr(t, s, "198.18.0.2", hooks.PublicKey{})
	s.Close()

	s, err = Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	wantAddr(t, s, "198.18.0.2", key(1))
	wantAddr(t, s, "fd00::2", key(1))
	var v int
	if err := s.db.QueryRowContext(ctx, `PRAGMA user_version`).Scan(&v); err != nil || v < indexVersion {
		t.Fatalf("user_version = %d, %v; want at least %d", v, err, indexVersion)
	}
}
