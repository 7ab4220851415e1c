package pgstore

// The fleet's learned state (hooks.StateStore): each peer's last
// endpoint and handshake, written by every gateway in batches, read by a
// replacement gateway.

import (
	"context"
	"fmt"
	"net/netip"
	"time"

	"github.com/wghooks/wghooks/hooks"
)

// stateBatch is how many states one statement of SavePeerState writes.
const stateBatch = 1000

// SavePeerState implements hooks.StateStore: an upsert per batch, where
// the later handshake wins (a gateway with an older view never rolls
// another's back).
func (s *Store) SavePeerState(ctx context.Context, states []hooks.PeerState) error {
	latest := make(map[hooks.PublicKey]hooks.PeerState, len(states))
	for _, st := range states {
		if cur, ok := latest[st.Key]; !ok || st.LastHandshake.After(cur.LastHandshake) {
			latest[st.Key] = st
		}
	}
	var (
		keys [][]byte
		eps  []string
		hs   []time.Time
	)
	flush := func() error {
		if len(keys) == 0 {
			return nil
		}
		err := s.do(ctx, fmt.Sprintf("save the state of %d peers", len(keys)), func(ctx context.Context) error {
			_, err := s.pool.Exec(ctx, `INSERT INTO wghooks_peer_state AS s (public_key, endpoint, last_handshake)
				SELECT * FROM unnest($1::bytea[], $2::text[], $3::timestamptz[])
				ON CONFLICT (public_key) DO UPDATE SET
					endpoint = EXCLUDED.endpoint, last_handshake = EXCLUDED.last_handshake, updated = now()
				WHERE s.last_handshake < EXCLUDED.last_handshake`, keys, eps, hs)
			return err
		})
		keys, eps, hs = keys[:0], eps[:0], hs[:0]
		return err
	}
	for k, st := range latest {
		if st.LastHandshake.IsZero() {
			continue
		}
		ep := ""
		if st.Endpoint.IsValid() {
			ep = st.Endpoint.String()
		}
		keys = append(keys, append([]byte(nil), k[:]...))
		eps = append(eps, ep)
		hs = append(hs, st.LastHandshake)
		if len(keys) == stateBatch {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	return flush()
}

// LoadPeerState implements hooks.StateStore: the states whose last
// handshake is at or after since, most recent first, at most limit. A
// row whose endpoint does not parse comes without one.
func (s *Store) LoadPeerState(ctx context.Context, since time.Time, limit int) ([]hooks.PeerState, error) {
	if limit <= 0 {
		return nil, nil
	}
	var out []hooks.PeerState
	err := s.do(ctx, "load peer state", func(ctx context.Context) error {
		out = out[:0]
		rows, err := s.pool.Query(ctx, `SELECT public_key, endpoint, last_handshake FROM wghooks_peer_state
			WHERE last_handshake >= $1 ORDER BY last_handshake DESC LIMIT $2`, since, limit)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var (
				k  []byte
				ep string
				st hooks.PeerState
			)
			if err := rows.Scan(&k, &ep, &st.LastHandshake); err != nil {
				return err
			}
			if len(k) != 32 {
				continue
			}
			st.Key = hooks.PublicKey(k)
			st.Endpoint, _ = netip.ParseAddrPort(ep)
			out = append(out, st)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
