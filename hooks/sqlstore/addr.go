package sqlstore

// The address index: which stored peer a tunnel address belongs to, for
// the device's outbound side (hooks.AddrProvider).
//
// Each allowed IP prefix of each peer is one row of peer_prefixes, keyed
// by an encoding that sorts longer prefixes of a family after shorter
// ones: family (4 or 6), prefix length, masked address bytes. A lookup
// computes the addr's prefix at every length of its family (33 for IPv4,
// 129 for IPv6) and asks for the longest of them that is stored: one
// query, at most 129 index probes, whatever the store's size, the same
// longest-prefix match WireGuard routes by.
//
// The index follows every write through Store (Put, Delete, Import). A
// store written by an older version is indexed once, the first time this
// version opens it (PRAGMA user_version 1). Rows changed behind Store's
// back (by hand, in the sqlite3 shell) can leave stale index rows: a
// lookup checks its answer against the peer's own allowed_ips and skips
// them, but a prefix added by hand is not found until the peer is Put
// again.

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"github.com/wghooks/wghooks/hooks"
	"github.com/wghooks/wghooks/internal/peerrow"
)

const prefixSchema = `
CREATE TABLE IF NOT EXISTS peer_prefixes (
	prefix     BLOB NOT NULL,
	public_key BLOB NOT NULL,
	PRIMARY KEY (prefix, public_key)
) WITHOUT ROWID;
`

// indexVersion is the user_version of a store whose address index is
// complete.
const indexVersion = 1

// prefixKey encodes p for peer_prefixes.
func prefixKey(p netip.Prefix) []byte {
	p = p.Masked()
	a := p.Addr().Unmap()
	if a.Is4() {
		b := a.As4()
		return append([]byte{4, byte(p.Bits())}, b[:]...)
	}
	b := a.As16()
	return append([]byte{6, byte(p.Bits())}, b[:]...)
}

// addrCandidates returns the keys of addr's prefixes at every length.
func addrCandidates(addr netip.Addr) []any {
	out := make([]any, 0, addr.BitLen()+1)
	for bits := 0; bits <= addr.BitLen(); bits++ {
		p, _ := addr.Prefix(bits)
		out = append(out, prefixKey(p))
	}
	return out
}

func addrQuery(n int) string {
	return `SELECT x.prefix, p.public_key, p.allowed_ips, p.preshared_key, p.persistent_keepalive, p.endpoint
		FROM peer_prefixes x JOIN peers p ON p.public_key = x.public_key
		WHERE x.prefix IN (?` + strings.Repeat(",?", n-1) + `)
		ORDER BY x.prefix DESC`
}

// prepareAddr prepares the two lookup statements.
func (s *Store) prepareAddr() error {
	var err error
	if s.lookupAddr4, err = s.db.Prepare(addrQuery(33)); err != nil {
		return err
	}
	s.lookupAddr6, err = s.db.Prepare(addrQuery(129))
	return err
}

// LookupAddr implements hooks.AddrProvider: the peer whose allowed IPs
// hold addr, by longest prefix. Two peers claiming the same longest
// prefix is an error naming both (the store cannot tell which is meant).
func (s *Store) LookupAddr(ctx context.Context, addr netip.Addr) (hooks.PeerConfig, error) {
	addr = addr.Unmap()
	if !addr.IsValid() || addr.Zone() != "" {
		return hooks.PeerConfig{}, fmt.Errorf("failed to look up address %q: not a plain IP address", addr)
	}
	st := s.lookupAddr6
	if addr.Is4() {
		st = s.lookupAddr4
	}
	rows, err := st.QueryContext(ctx, addrCandidates(addr)...)
	if err != nil {
		return hooks.PeerConfig{}, fmt.Errorf("failed to look up address %s: %w", addr, err)
	}
	defer rows.Close()
	var (
		found     hooks.PeerConfig
		foundPfx  []byte
		haveFound bool
	)
	for rows.Next() {
		var (
			pfx, k, psk []byte
			ips, ep     string
			ka          int64
			key         hooks.PublicKey
		)
		if err := rows.Scan(&pfx, &k, &ips, &psk, &ka, &ep); err != nil {
			return hooks.PeerConfig{}, fmt.Errorf("failed to look up address %s: %w", addr, err)
		}
		if haveFound && string(pfx) != string(foundPfx) {
			break // a shorter prefix: the longest one is decided
		}
		copy(key[:], k)
		cfg, err := decodeRow(key, ips, psk, ka, ep)
		if err != nil || !containsAddr(cfg.AllowedIPs, addr) {
			continue // a stale index row (see above)
		}
		if haveFound {
			return hooks.PeerConfig{}, fmt.Errorf("failed to look up address %s: both %s and %s claim it", addr, found.PublicKey, key)
		}
		found, foundPfx, haveFound = cfg, pfx, true
	}
	if err := rows.Err(); err != nil {
		return hooks.PeerConfig{}, fmt.Errorf("failed to look up address %s: %w", addr, err)
	}
	if !haveFound {
		return hooks.PeerConfig{}, hooks.ErrUnknownPeer
	}
	return found, nil
}

func containsAddr(ps []netip.Prefix, a netip.Addr) bool { return peerrow.ContainsAddr(ps, a) }

// execer is what both *sql.Tx and *sql.Conn offer.
type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	PrepareContext(ctx context.Context, query string) (*sql.Stmt, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// indexer keeps the address index in step with writes inside one
// transaction, with its statements prepared once.
type indexer struct {
	tx                    execer
	old, del, delKey, ins *sql.Stmt
}

func newIndexer(ctx context.Context, tx execer) (*indexer, error) {
	ix := &indexer{tx: tx}
	for _, q := range []struct {
		st  **sql.Stmt
		sql string
	}{
		{&ix.old, `SELECT allowed_ips FROM peers WHERE public_key = ?`},
		{&ix.del, `DELETE FROM peer_prefixes WHERE prefix = ? AND public_key = ?`},
		{&ix.delKey, `DELETE FROM peer_prefixes WHERE public_key = ?`},
		{&ix.ins, `INSERT OR IGNORE INTO peer_prefixes (prefix, public_key) VALUES (?, ?)`},
	} {
		st, err := tx.PrepareContext(ctx, q.sql)
		if err != nil {
			ix.close()
			return nil, err
		}
		*q.st = st
	}
	return ix, nil
}

func (ix *indexer) close() {
	for _, st := range []*sql.Stmt{ix.old, ix.del, ix.delKey, ix.ins} {
		if st != nil {
			st.Close()
		}
	}
}

// unindex removes key's index rows, found from its stored allowed IPs;
// call it before the peer's row changes.
func (ix *indexer) unindex(ctx context.Context, key hooks.PublicKey) error {
	var ips string
	err := ix.old.QueryRowContext(ctx, key[:]).Scan(&ips)
	if errors.Is(err, sql.ErrNoRows) {
		return nil
	}
	if err != nil {
		return err
	}
	ps, err := ParseAllowedIPs(ips)
	if err != nil {
		// Unreadable: find its rows the slow way (a table scan).
		_, err = ix.delKey.ExecContext(ctx, key[:])
		return err
	}
	for _, p := range ps {
		if _, err := ix.del.ExecContext(ctx, prefixKey(p), key[:]); err != nil {
			return err
		}
	}
	return nil
}

// index adds key's index rows.
func (ix *indexer) index(ctx context.Context, key hooks.PublicKey, ps []netip.Prefix) error {
	for _, p := range ps {
		if _, err := ix.ins.ExecContext(ctx, prefixKey(p), key[:]); err != nil {
			return err
		}
	}
	return nil
}

// migrateIndex indexes a store written before the address index existed,
// once (upgrade).
func (s *Store) migrateIndex(ctx context.Context) error {
	return s.upgrade(ctx, indexVersion, backfillIndex)
}

func backfillIndex(ctx context.Context, c *sql.Conn) error {
	if _, err := c.ExecContext(ctx, `DELETE FROM peer_prefixes`); err != nil {
		return err
	}
	ix, err := newIndexer(ctx, c)
	if err != nil {
		return err
	}
	defer ix.close()
	// In key order, a batch at a time, so memory stays bounded whatever
	// the store's size.
	after := []byte{}
	for {
		batch, err := readIndexBatch(ctx, c, after)
		if err != nil {
			return err
		}
		if len(batch) == 0 {
			break
		}
		for _, r := range batch {
			if err := ix.index(ctx, r.key, r.ps); err != nil {
				return err
			}
		}
		after = batch[len(batch)-1].key[:]
	}
	return nil
}

type indexRow struct {
	key hooks.PublicKey
	ps  []netip.Prefix // nil when unreadable (LookupPeer fails on it too)
}

const indexBatch = 10000

func readIndexBatch(ctx context.Context, c *sql.Conn, after []byte) ([]indexRow, error) {
	rows, err := c.QueryContext(ctx, `SELECT public_key, allowed_ips FROM peers WHERE public_key > ? ORDER BY public_key LIMIT ?`, after, indexBatch)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []indexRow
	for rows.Next() {
		var (
			k   []byte
			ips string
			r   indexRow
		)
		if err := rows.Scan(&k, &ips); err != nil {
			return nil, err
		}
		copy(r.key[:], k)
		r.ps, _ = ParseAllowedIPs(ips)
		out = append(out, r)
	}
	return out, rows.Err()
}
