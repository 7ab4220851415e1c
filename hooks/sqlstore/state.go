package sqlstore

// The fleet's learned state (hooks.StateStore): where each peer was last
// heard from and when its last handshake completed, written by every
// gateway that shares this file and read by a replacement gateway that
// takes over the address its clients use (device/restart's takeover).
//
// One row per peer key and writing gateway key in peer_state. A write is
// an upsert that keeps the later handshake: two gateways of one fleet (or
// two batches) that race leave the most recent state, whatever order they
// commit in; gateways with other keys keep rows of their own. Rows are
// independent of peers: a peer removed with Delete loses its rows too, so
// a takeover never reaches for a key the store no longer serves.
//
// A store written before the writer's key was recorded is moved to the
// new table once, at Open (PRAGMA user_version 2); its rows keep an empty
// gateway_key and are never returned for a takeover, as nothing says
// which key learned them.

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/wghooks/wghooks/hooks"
	"github.com/wghooks/wghooks/internal/peerrow"
)

// stateTable is peer_state as this version writes it; gateway_key is
// empty only in rows moved from a store of version 1.
const stateTable = `
CREATE TABLE IF NOT EXISTS peer_state (
	public_key     BLOB NOT NULL CHECK (length(public_key) = 32),
	gateway_key    BLOB NOT NULL CHECK (length(gateway_key) IN (0, 32)),
	endpoint       TEXT NOT NULL,
	last_handshake INTEGER NOT NULL, -- Unix nanoseconds
	PRIMARY KEY (public_key, gateway_key)
) WITHOUT ROWID;
`

// stateIndex is the takeover's read: one gateway's most recent rows.
const stateIndex = `
CREATE INDEX IF NOT EXISTS peer_state_gateway_recent ON peer_state (gateway_key, last_handshake);
`

// stateVersion is the user_version of a store whose peer_state records
// the writer's key.
const stateVersion = 2

// migrateState moves a peer_state of version 1 (keyed by the peer alone)
// to stateTable, once (upgrade), and creates stateIndex.
func (s *Store) migrateState(ctx context.Context) error {
	return s.upgrade(ctx, stateVersion, moveState)
}

func moveState(ctx context.Context, c *sql.Conn) error {
	var n int
	if err := c.QueryRowContext(ctx, `SELECT count(*) FROM pragma_table_info('peer_state') WHERE name = 'gateway_key'`).Scan(&n); err != nil {
		return err
	}
	if n == 0 {
		for _, q := range []string{
			`ALTER TABLE peer_state RENAME TO peer_state_v1`,
			`DROP INDEX IF EXISTS peer_state_recent`,
			stateTable,
			`INSERT INTO peer_state (public_key, gateway_key, endpoint, last_handshake)
				SELECT public_key, x'', endpoint, last_handshake FROM peer_state_v1`,
			`DROP TABLE peer_state_v1`,
		} {
			if _, err := c.ExecContext(ctx, q); err != nil {
				return err
			}
		}
	}
	_, err := c.ExecContext(ctx, stateIndex)
	return err
}

var _ hooks.StateStore = (*Store)(nil)

// SavePeerState implements hooks.StateStore: one transaction for the
// batch; per peer and gateway key, the later LastHandshake wins, within the batch and
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
	up, err := tx.PrepareContext(ctx, `INSERT INTO peer_state (public_key, gateway_key, endpoint, last_handshake) VALUES (?, ?, ?, ?)
		ON CONFLICT (public_key, gateway_key) DO UPDATE SET endpoint = excluded.endpoint, last_handshake = excluded.last_handshake
		WHERE excluded.last_handshake > peer_state.last_handshake`)
	if err != nil {
		return fmt.Errorf("failed to save peer state: %w", err)
	}
	defer up.Close()
	for _, st := range states {
		ep := netip.AddrPortFrom(st.Endpoint.Addr().Unmap(), st.Endpoint.Port())
		if _, err := up.ExecContext(ctx, st.Key[:], st.Gateway[:], ep.String(), st.LastHandshake.UnixNano()); err != nil {
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

// LoadPeerState implements hooks.StateStore: the states written by
// gateway whose last handshake is at or after since, most recent first,
// at most limit (limit <= 0 or no gateway: none). A malformed row is
// skipped and named in an error wrapping ErrMalformedState, returned with
// the others.
func (s *Store) LoadPeerState(ctx context.Context, gateway hooks.PublicKey, since time.Time, limit int) ([]hooks.PeerState, error) {
	if limit <= 0 || gateway == (hooks.PublicKey{}) {
		return nil, nil
	}
	rows, err := s.db.QueryContext(ctx, `SELECT public_key, endpoint, last_handshake FROM peer_state
		WHERE gateway_key = ? AND last_handshake >= ? ORDER BY last_handshake DESC LIMIT ?`, gateway[:], since.UnixNano(), limit)
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
		st := hooks.PeerState{LastHandshake: time.Unix(0, ns), Gateway: gateway}
		copy(st.Key[:], k)
		// The rule a save checks (peerrow.ValidState), so a row edited
		// by hand (port 0) is refused as PostgreSQL's store refuses it.
		if st.Endpoint, err = netip.ParseAddrPort(ep); err != nil || peerrow.ValidState(st) != nil {
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
