package pgstore

// The fleet's learned state (hooks.StateStore): each peer's last
// endpoint and handshake, written by every gateway in batches, read by a
// replacement gateway with the same key. One row per peer and writing
// gateway key (schema version 2); rows from version 1 have an empty
// gateway_key and are never read. A peer deleted from wghooks_peers loses its state
// row too (the change trigger), so a takeover never reaches for a key the
// store no longer serves.

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/wghooks/wghooks/hooks"
	"github.com/wghooks/wghooks/internal/peerrow"
)

// stateBatch is how many states one statement of SavePeerState writes.
const stateBatch = 1000

// SavePeerState implements hooks.StateStore: one transaction for the
// batch, an upsert per stateBatch states where the later handshake wins
// (within the batch, and against what another gateway wrote, whatever
// the order of the commits). An invalid entry fails the whole batch
// before anything is written, naming it.
func (s *Store) SavePeerState(ctx context.Context, states []hooks.PeerState) error {
	// ON CONFLICT refuses a statement touching one row twice: keep the
	// latest state per peer and gateway key.
	type rowKey struct{ peer, gateway hooks.PublicKey }
	latest := make(map[rowKey]hooks.PeerState, len(states))
	for i, st := range states {
		if err := peerrow.ValidState(st); err != nil {
			return fmt.Errorf("failed to save peer state %d (%s): %w", i, st.Key, err)
		}
		k := rowKey{st.Key, st.Gateway}
		if cur, ok := latest[k]; !ok || st.LastHandshake.After(cur.LastHandshake) {
			latest[k] = st
		}
	}
	if len(latest) == 0 {
		return nil
	}
	return s.do(ctx, fmt.Sprintf("save the state of %d peers", len(latest)), func(ctx context.Context) error {
		tx, err := s.pool.Begin(ctx)
		if err != nil {
			return err
		}
		defer tx.Rollback(context.Background())
		var (
			keys, gws [][]byte
			eps       []string
			hs        []time.Time
		)
		flush := func() error {
			if len(keys) == 0 {
				return nil
			}
			_, err := tx.Exec(ctx, `INSERT INTO wghooks_peer_state AS s (public_key, gateway_key, endpoint, last_handshake)
				SELECT * FROM unnest($1::bytea[], $2::bytea[], $3::text[], $4::timestamptz[])
				ON CONFLICT (public_key, gateway_key) DO UPDATE SET
					endpoint = EXCLUDED.endpoint, last_handshake = EXCLUDED.last_handshake, updated = now()
				WHERE s.last_handshake < EXCLUDED.last_handshake`, keys, gws, eps, hs)
			keys, gws, eps, hs = keys[:0], gws[:0], eps[:0], hs[:0]
			return err
		}
		for _, st := range latest {
			ep := netip.AddrPortFrom(st.Endpoint.Addr().Unmap(), st.Endpoint.Port())
			keys = append(keys, append([]byte(nil), st.Key[:]...))
			gws = append(gws, append([]byte(nil), st.Gateway[:]...))
			eps = append(eps, ep.String())
			hs = append(hs, st.LastHandshake)
			if len(keys) == stateBatch {
				if err := flush(); err != nil {
					return err
				}
			}
		}
		if err := flush(); err != nil {
			return err
		}
		return tx.Commit(ctx)
	})
}

// ErrMalformedState marks rows of wghooks_peer_state that do not parse
// (written by hand): LoadPeerState skips them and returns this error,
// wrapped and naming them, beside the states that did parse.
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
	var (
		out []hooks.PeerState
		bad []string
	)
	err := s.do(ctx, "load peer state", func(ctx context.Context) error {
		rows, err := s.pool.Query(ctx, `SELECT public_key, endpoint, last_handshake FROM wghooks_peer_state
			WHERE gateway_key = $1 AND last_handshake >= $2 ORDER BY last_handshake DESC LIMIT $3`, gateway[:], since, limit)
		if err != nil {
			return err
		}
		var (
			k  []byte
			ep string
			at time.Time
		)
		_, err = pgx.ForEachRow(rows, []any{&k, &ep, &at}, func() error {
			st := hooks.PeerState{Gateway: gateway, LastHandshake: at}
			copy(st.Key[:], k)
			var err error
			if st.Endpoint, err = netip.ParseAddrPort(ep); err != nil || peerrow.ValidState(st) != nil {
				bad = append(bad, fmt.Sprintf("%s: endpoint %q", st.Key, ep))
				return nil
			}
			out = append(out, st)
			return nil
		})
		return err
	})
	if err != nil {
		return nil, err
	}
	if len(bad) > 0 {
		return out, fmt.Errorf("failed to load %d of the peer states: %w: %s", len(bad), ErrMalformedState, strings.Join(bad, "; "))
	}
	return out, nil
}
