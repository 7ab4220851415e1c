package sqlstore

// The fleet's learned state (hooks.StateStore): where each peer was last
// heard from and when its last handshake completed, written by every
// gateway that shares this file and read by a replacement gateway that
// takes over the address its clients use (device/restart's takeover).
//
// One row per peer key in peer_state. A write is an upsert that keeps the
// later handshake: two gateways (or two batches) that race leave the most
// recent state, whatever order they commit in. Rows are independent of
// peers: a peer removed with Delete loses its row too, so a takeover
// never reaches for a key the store no longer serves.

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/wghooks/wghooks/hooks"
	"github.com/wghooks/wghooks/internal/peerrow"
)

const stateSchema = `
CREATE TABLE IF NOT EXISTS peer_state (
	public_key     BLOB PRIMARY KEY CHECK (length(public_key) = 32),
	endpoint       TEXT NOT NULL,
	last_handshake INTEGER NOT NULL -- Unix nanoseconds
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS peer_state_recent ON peer_state (last_handshake);
`

var _ hooks.StateStore = (*Store)(nil)

// SavePeerState implements hooks.StateStore: one transaction for the
// batch; per key, the later LastHandshake wins, within the batch and
// against what is stored. An invalid entry fails the whole batch before
// anything is written, naming it.
func (s *Store) SavePeerState(ctx context.Context, states []hooks.PeerState) error {
	for i, st := range states {
		if err := peerrow.ValidState(st); err != nil {
			return fmt.Errorf("failed to save peer state %d (%s): %w", i, st.Key, err)
		}
	}
	if len(states) == 0 {
		return nil
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("failed to save peer state: %w", err)
	}
	defer tx.Rollback()
	up, err := tx.PrepareContext(ctx, `INSERT INTO peer_state (public_key, endpoint, last_handshake) VALUES (?, ?, ?)
		ON CONFLICT (public_key) DO UPDATE SET endpoint = excluded.endpoint, last_handshake = excluded.last_handshake
		WHERE excluded.last_handshake > peer_state.last_handshake`)
	if err != nil {
		return fmt.Errorf("failed to save peer state: %w", err)
	}
	defer up.Close()
	for _, st := range states {
		ep := netip.AddrPortFrom(st.Endpoint.Addr().Unmap(), st.Endpoint.Port())
		if _, err := up.ExecContext(ctx, st.Key[:], ep.String(), st.LastHandshake.UnixNano()); err != nil {
			return fmt.Errorf("failed to save peer state of %s: %w", st.Key, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("failed to save peer state: %w", err)
	}
	return nil
}

// ErrMalformedState marks rows of peer_state that do not parse (written
// by hand): LoadPeerState skips them and returns this error, wrapped and
// naming them, beside the states that did parse.
var ErrMalformedState = errors.New("malformed peer state")

// LoadPeerState implements hooks.StateStore: the states whose last
// handshake is at or after since, most recent first, at most limit
// (limit <= 0: none). A malformed row is skipped and named in an error
// wrapping ErrMalformedState, returned with the others.
func (s *Store) LoadPeerState(ctx context.Context, since time.Time, limit int) ([]hooks.PeerState, error) {
	if limit <= 0 {
		return nil, nil
	}
	rows, err := s.db.QueryContext(ctx, `SELECT public_key, endpoint, last_handshake FROM peer_state
		WHERE last_handshake >= ? ORDER BY last_handshake DESC LIMIT ?`, since.UnixNano(), limit)
	if err != nil {
		return nil, fmt.Errorf("failed to load peer state: %w", err)
	}
	defer rows.Close()
	var (
		out []hooks.PeerState
		bad []error
	)
	for rows.Next() {
		var (
			k  []byte
			ep string
			ns int64
		)
		if err := rows.Scan(&k, &ep, &ns); err != nil {
			return out, fmt.Errorf("failed to load peer state: %w", err)
		}
		st := hooks.PeerState{LastHandshake: time.Unix(0, ns)}
		copy(st.Key[:], k)
		if st.Endpoint, err = netip.ParseAddrPort(ep); err != nil {
			bad = append(bad, fmt.Errorf("%s: endpoint %q", st.Key, ep))
			continue
		}
		out = append(out, st)
	}
	if err := rows.Err(); err != nil {
		return out, fmt.Errorf("failed to load peer state: %w", err)
	}
	if len(bad) > 0 {
		return out, fmt.Errorf("failed to load peer state: %w: %w", ErrMalformedState, errors.Join(bad...))
	}
	return out, nil
}
