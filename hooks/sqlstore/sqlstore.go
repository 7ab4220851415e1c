// Package sqlstore is an embedded SQLite peer store: the wghooks daemon's
// default hooks.Provider. One file holds any number of peers (a million
// is routine); the device asks it only about keys that just proved
// themselves in a handshake, so the store's size costs neither start-up
// time nor memory. It also answers which peer holds a tunnel address
// (LookupAddr, an index on allowed IPs: addr.go), for the device's
// outbound side. Gateways sharing the file also keep the fleet's learned
// state in it (hooks.StateStore: endpoints and last handshakes, state.go),
// for a replacement gateway that takes over their address.
//
// It uses a pure-Go SQLite (modernc.org/sqlite, no cgo) in WAL mode, so
// the control CLI can add and remove peers while the daemon reads.
package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"syscall"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver

	"github.com/wghooks/wghooks/hooks"
	"github.com/wghooks/wghooks/internal/peerrow"
)

const schema = `
CREATE TABLE IF NOT EXISTS peers (
	public_key           BLOB PRIMARY KEY CHECK (length(public_key) = 32),
	allowed_ips          TEXT NOT NULL DEFAULT '',
	preshared_key        BLOB CHECK (preshared_key IS NULL OR length(preshared_key) = 32),
	persistent_keepalive INTEGER NOT NULL DEFAULT 0,
	endpoint             TEXT NOT NULL DEFAULT '',
	comment              TEXT NOT NULL DEFAULT '',
	added                INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
`

// Peer is one stored peer.
type Peer struct {
	hooks.PeerConfig
	// Comment is free text for operators (e.g. who the key belongs to).
	Comment string
	// Added is when the peer was stored.
	Added time.Time
}

// Store is a SQLite peer store. It is safe for concurrent use.
type Store struct {
	db     *sql.DB
	path   string
	lookup *sql.Stmt
	// lookupAddr4 and lookupAddr6 find a peer by address (addr.go).
	lookupAddr4, lookupAddr6 *sql.Stmt
	batch                    batchStmts // LookupPeers' statements (batch.go)
}

var (
	_ hooks.Provider     = (*Store)(nil)
	_ hooks.AddrProvider = (*Store)(nil)
)

// Open opens the store at path, creating the file and its table when
// missing.
func Open(path string) (*Store, error) {
	if path == "" {
		return nil, fmt.Errorf("failed to open peer store: empty path")
	}
	if err := createRegular(path); err != nil {
		return nil, fmt.Errorf("failed to open peer store %q: %w", path, err)
	}
	dsn, err := dsnFor(path)
	if err != nil {
		return nil, fmt.Errorf("failed to open peer store %q: %w", path, err)
	}
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("failed to open peer store %q: %w", path, err)
	}
	if _, err := db.Exec(schema + prefixSchema + stateTable); err != nil {
		db.Close()
		return nil, fmt.Errorf("failed to open peer store %q: %w", path, err)
	}
	s := &Store{db: db, path: path}
	if err := s.migrateIndex(context.Background()); err != nil {
		db.Close()
		return nil, fmt.Errorf("failed to index peer store %q by address: %w", path, err)
	}
	if err := s.migrateState(context.Background()); err != nil {
		db.Close()
		return nil, fmt.Errorf("failed to upgrade the peer state of store %q: %w", path, err)
	}
	s.lookup, err = db.Prepare(`SELECT allowed_ips, preshared_key, persistent_keepalive, endpoint FROM peers WHERE public_key = ?`)
	if err == nil {
		err = s.prepareAddr()
	}
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("failed to open peer store %q: %w", path, err)
	}
	return s, nil
}

// upgrade brings a store below version (PRAGMA user_version) to it:
// step runs once, in a transaction under the write lock (BEGIN
// IMMEDIATE), so two openers do not both run it, and records version.
// Versions go up one at a time, in the order Open calls upgrade.
func (s *Store) upgrade(ctx context.Context, version int, step func(context.Context, *sql.Conn) error) error {
	c, err := s.db.Conn(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	var v int
	if err := c.QueryRowContext(ctx, `PRAGMA user_version`).Scan(&v); err != nil {
		return err
	}
	if v >= version {
		return nil
	}
	if _, err := c.ExecContext(ctx, `BEGIN IMMEDIATE`); err != nil {
		return err
	}
	err = func() error {
		// Another opener may have upgraded it meanwhile.
		if err := c.QueryRowContext(ctx, `PRAGMA user_version`).Scan(&v); err != nil || v >= version {
			return err
		}
		if err := step(ctx, c); err != nil {
			return err
		}
		_, err := c.ExecContext(ctx, fmt.Sprintf(`PRAGMA user_version = %d`, version))
		return err
	}()
	if err != nil {
		c.ExecContext(ctx, `ROLLBACK`)
		return err
	}
	_, err = c.ExecContext(ctx, `COMMIT`)
	return err
}

// createRegular creates path mode 0600 when missing, and refuses an
// existing path that is not a regular file (a FIFO, a device), without
// blocking on it. The store holds preshared keys: SQLite gives the -wal,
// -shm and journal files it creates the mode of this file.
func createRegular(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|syscall.O_NONBLOCK, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if !st.Mode().IsRegular() {
		return fmt.Errorf("not a regular file (%v)", st.Mode().Type())
	}
	return nil
}

// dsnFor is the driver's name for path: a file: URI of the absolute path,
// escaped, so '#', '?' and '%' in the path stay in the file name (SQLite
// decodes %HH in a URI's path), with the store's pragmas.
func dsnFor(path string) (string, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", err
	}
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(5000)")
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(NORMAL)")
	u := url.URL{Scheme: "file", Path: filepath.ToSlash(abs), RawQuery: q.Encode()}
	return u.String(), nil
}

// Path returns the file the store was opened from.
func (s *Store) Path() string { return s.path }

// Close closes the store.
func (s *Store) Close() error {
	s.batch.close()
	for _, st := range []*sql.Stmt{s.lookup, s.lookupAddr4, s.lookupAddr6} {
		if st != nil {
			st.Close()
		}
	}
	return s.db.Close()
}

// LookupPeer implements hooks.Provider.
func (s *Store) LookupPeer(ctx context.Context, key hooks.PublicKey) (hooks.PeerConfig, error) {
	var (
		ips, ep string
		psk     []byte
		ka      int64
	)
	err := s.lookup.QueryRowContext(ctx, key[:]).Scan(&ips, &psk, &ka, &ep)
	if errors.Is(err, sql.ErrNoRows) {
		return hooks.PeerConfig{}, hooks.ErrUnknownPeer
	}
	if err != nil {
		return hooks.PeerConfig{}, fmt.Errorf("failed to look up peer %s: %w", key, err)
	}
	return decodeRow(key, ips, psk, ka, ep)
}

func decodeRow(key hooks.PublicKey, ips string, psk []byte, ka int64, ep string) (hooks.PeerConfig, error) {
	return peerrow.Decode(key, ips, psk, ka, ep)
}

// ParseAllowedIPs parses a comma-separated list of prefixes (spaces
// allowed), as `wg` writes AllowedIPs. A bare address means a host
// prefix.
func ParseAllowedIPs(s string) ([]netip.Prefix, error) { return peerrow.ParseAllowedIPs(s) }

// Put stores peers, replacing any with the same keys, in one transaction.
// Each peer's PublicKey must be set and its configuration valid.
func (s *Store) Put(ctx context.Context, peers ...Peer) error {
	rows := make([]peerrow.Encoded, len(peers))
	for i, p := range peers {
		var err error
		if rows[i], err = peerrow.Encode(p.PeerConfig); err != nil {
			return err
		}
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("failed to store peers: %w", err)
	}
	defer tx.Rollback()
	st, err := tx.PrepareContext(ctx, `INSERT OR REPLACE INTO peers
		(public_key, allowed_ips, preshared_key, persistent_keepalive, endpoint, comment, added)
		VALUES (?, ?, ?, ?, ?, ?, ?)`)
	if err != nil {
		return fmt.Errorf("failed to store peers: %w", err)
	}
	defer st.Close()
	ix, err := newIndexer(ctx, tx)
	if err != nil {
		return fmt.Errorf("failed to store peers: %w", err)
	}
	defer ix.close()
	now := time.Now().Unix()
	for i, p := range peers {
		var psk any
		if r := rows[i]; r.PresharedKey != nil {
			psk = r.PresharedKey
		}
		added := now
		if !p.Added.IsZero() {
			added = p.Added.Unix()
		}
		if err := ix.unindex(ctx, p.PublicKey); err != nil {
			return fmt.Errorf("failed to store peer %s: %w", p.PublicKey, err)
		}
		if _, err := st.ExecContext(ctx, p.PublicKey[:], rows[i].AllowedIPs, psk,
			rows[i].Keepalive, rows[i].Endpoint, p.Comment, added); err != nil {
			return fmt.Errorf("failed to store peer %s: %w", p.PublicKey, err)
		}
		if err := ix.index(ctx, p.PublicKey, p.AllowedIPs); err != nil {
			return fmt.Errorf("failed to store peer %s: %w", p.PublicKey, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("failed to store peers: %w", err)
	}
	return nil
}

// Delete removes the peer with key and reports whether it was there.
func (s *Store) Delete(ctx context.Context, key hooks.PublicKey) (bool, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return false, fmt.Errorf("failed to delete peer %s: %w", key, err)
	}
	defer tx.Rollback()
	ix, err := newIndexer(ctx, tx)
	if err != nil {
		return false, fmt.Errorf("failed to delete peer %s: %w", key, err)
	}
	defer ix.close()
	if err := ix.unindex(ctx, key); err != nil {
		return false, fmt.Errorf("failed to delete peer %s: %w", key, err)
	}
	res, err := tx.ExecContext(ctx, `DELETE FROM peers WHERE public_key = ?`, key[:])
	if err != nil {
		return false, fmt.Errorf("failed to delete peer %s: %w", key, err)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM peer_state WHERE public_key = ?`, key[:]); err != nil {
		return false, fmt.Errorf("failed to delete peer %s: %w", key, err)
	}
	if err := tx.Commit(); err != nil {
		return false, fmt.Errorf("failed to delete peer %s: %w", key, err)
	}
	n, _ := res.RowsAffected()
	return n > 0, nil
}

// Get returns one stored peer, or an error matching hooks.ErrUnknownPeer.
func (s *Store) Get(ctx context.Context, key hooks.PublicKey) (Peer, error) {
	var out Peer
	err := s.scan(ctx, func(p Peer) error { out = p; return nil },
		`WHERE public_key = ?`, key[:])
	if err != nil {
		return out, err
	}
	if out.PublicKey == (hooks.PublicKey{}) {
		return out, fmt.Errorf("failed to get peer %s: %w", key, hooks.ErrUnknownPeer)
	}
	return out, nil
}

// Each calls fn for every stored peer in key order, streaming: a store of
// any size costs one row at a time. An error from fn stops it.
func (s *Store) Each(ctx context.Context, fn func(Peer) error) error {
	return s.scan(ctx, fn, `ORDER BY public_key`)
}

func (s *Store) scan(ctx context.Context, fn func(Peer) error, tail string, args ...any) error {
	rows, err := s.db.QueryContext(ctx, `SELECT public_key, allowed_ips, preshared_key, persistent_keepalive, endpoint, comment, added FROM peers `+tail, args...)
	if err != nil {
		return fmt.Errorf("failed to list peers: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			k, psk        []byte
			ips, ep, note string
			ka, addedUnix int64
			key           hooks.PublicKey
		)
		if err := rows.Scan(&k, &ips, &psk, &ka, &ep, &note, &addedUnix); err != nil {
			return fmt.Errorf("failed to list peers: %w", err)
		}
		copy(key[:], k)
		cfg, err := decodeRow(key, ips, psk, ka, ep)
		if err != nil {
			return err
		}
		if err := fn(Peer{PeerConfig: cfg, Comment: note, Added: time.Unix(addedUnix, 0)}); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("failed to list peers: %w", err)
	}
	return nil
}

// Count returns how many peers are stored.
func (s *Store) Count(ctx context.Context) (int, error) {
	var n int
	if err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM peers`).Scan(&n); err != nil {
		return 0, fmt.Errorf("failed to count peers: %w", err)
	}
	return n, nil
}

// EnvPath names the environment variable that sets the store's path for
// the daemon and the control CLI alike.
const EnvPath = "WGHOOKS_PEER_DB"

// DefaultDir holds the stores of interfaces without WGHOOKS_PEER_DB.
const DefaultDir = "/var/lib/wghooks"

// PathFor returns the store path for iface: WGHOOKS_PEER_DB from getenv
// when set, else DefaultDir/IFACE.db.
func PathFor(iface string, getenv func(string) string) string {
	if p := getenv(EnvPath); p != "" {
		return p
	}
	return DefaultDir + "/" + iface + ".db"
}
