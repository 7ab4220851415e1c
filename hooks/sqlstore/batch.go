package sqlstore

// Batched lookups (hooks.BatchProvider): many keys in one query, for a
// mass arrival. A query names up to batchChunk keys; its statement is
// prepared once per number of keys and kept.

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/wghooks/wghooks/hooks"
)

// batchChunk bounds the keys one query names (and so the statements
// kept); a longer list takes several queries.
const batchChunk = 64

var _ hooks.BatchProvider = (*Store)(nil)

// batchStmts holds the prepared statements of LookupPeers, by number of
// keys.
type batchStmts struct {
	mu     sync.Mutex
	closed bool
	byN    map[int]*sql.Stmt
}

// LookupPeers implements hooks.BatchProvider: each key's configuration in
// the order asked, ErrUnknownPeer for a key the store does not hold, and
// a row that does not decode as that key's own error.
func (s *Store) LookupPeers(ctx context.Context, keys []hooks.PublicKey) ([]hooks.PeerResult, error) {
	out := make([]hooks.PeerResult, len(keys))
	for lo := 0; lo < len(keys); lo += batchChunk {
		hi := min(lo+batchChunk, len(keys))
		if err := s.lookupChunk(ctx, keys[lo:hi], out[lo:hi]); err != nil {
			return nil, fmt.Errorf("failed to look up %d peers: %w", len(keys), err)
		}
	}
	return out, nil
}

func (s *Store) lookupChunk(ctx context.Context, keys []hooks.PublicKey, out []hooks.PeerResult) error {
	st, err := s.batch.stmt(s.db, len(keys))
	if err != nil {
		return err
	}
	args := make([]any, len(keys))
	at := make(map[hooks.PublicKey]int, len(keys))
	for i, k := range keys {
		args[i] = k[:]
		at[k] = i
		out[i].Err = hooks.ErrUnknownPeer
	}
	rows, err := st.QueryContext(ctx, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var (
			k, psk  []byte
			ips, ep string
			ka      int64
		)
		if err := rows.Scan(&k, &ips, &psk, &ka, &ep); err != nil {
			return err
		}
		if len(k) != len(hooks.PublicKey{}) {
			continue // the table's CHECK keeps keys 32 bytes
		}
		i, ok := at[hooks.PublicKey(k)]
		if !ok {
			continue
		}
		out[i].Config, out[i].Err = decodeRow(keys[i], ips, psk, ka, ep)
	}
	return rows.Err()
}

// stmt returns the statement that looks up n keys, preparing it once.
func (b *batchStmts) stmt(db *sql.DB, n int) (*sql.Stmt, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil, errors.New("store closed")
	}
	if st := b.byN[n]; st != nil {
		return st, nil
	}
	q := `SELECT public_key, allowed_ips, preshared_key, persistent_keepalive, endpoint FROM peers WHERE public_key IN (?` +
		strings.Repeat(",?", n-1) + `)`
	st, err := db.Prepare(q)
	if err != nil {
		return nil, err
	}
	if b.byN == nil {
		b.byN = make(map[int]*sql.Stmt)
	}
	b.byN[n] = st
	return st, nil
}

func (b *batchStmts) close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	for _, st := range b.byN {
		st.Close()
	}
	b.byN = nil
}
