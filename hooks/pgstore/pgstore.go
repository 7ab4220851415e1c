// Package pgstore is a PostgreSQL peer store for a fleet of gateways:
// one database serves every gateway's just-in-time peers (by key, many
// keys at once, and by tunnel address), pushes each change to every
// gateway within a second (WatchChanges: a trigger, LISTEN/NOTIFY and a
// change counter a reconnecting gateway catches up from), and keeps the
// fleet's learned endpoints and handshakes (SavePeerState,
// LoadPeerState).
//
// The schema is versioned and changed only by Migrate (`wghooks peers
// migrate`); a gateway refuses a database without it. While the database
// is down, lookups fail at once (the device refuses unknown keys, fail
// closed, and keeps the peers it installed), and one lookup per probe
// interval tries the server again.
package pgstore

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/wghooks/wghooks/hooks"
	"github.com/wghooks/wghooks/internal/peerrow"
)

// Config configures a Store. Only URL is required.
type Config struct {
	// URL is the database, postgres://USER:PASSWORD@HOST/DB?... or with
	// host=/socket/dir; pgx's parameters (sslmode, pool_max_conns,
	// connect_timeout, ...) apply.
	URL string

	// MaxConns bounds the pool, unless the URL sets pool_max_conns.
	// Default 8.
	MaxConns int32

	// ConnectTimeout bounds one connection attempt, unless the URL sets
	// connect_timeout. Default 2 s.
	ConnectTimeout time.Duration

	// QueryTimeout bounds one query. Default 2 s.
	QueryTimeout time.Duration

	// ProbeInterval is how often, while the store is down, one lookup
	// tries the server; the others fail at once. Default 1 s.
	ProbeInterval time.Duration

	// PollInterval is how often WatchChanges reads the change counter
	// without a notification (the slow path, and a liveness check of its
	// connection). Default 5 s.
	PollInterval time.Duration

	// ChangeRetention is how long changes stay in the change log; a
	// gateway away longer than half of it revalidates every peer instead
	// of catching up. Default 1 h.
	ChangeRetention time.Duration

	// Logf gets one line when the store goes down and one when it is back.
	// Default: nothing.
	Logf hooks.Logf
}

func (c Config) withDefaults() Config {
	if c.MaxConns <= 0 {
		c.MaxConns = 8
	}
	def := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&c.ConnectTimeout, 2*time.Second)
	def(&c.QueryTimeout, 2*time.Second)
	def(&c.ProbeInterval, time.Second)
	def(&c.PollInterval, 5*time.Second)
	def(&c.ChangeRetention, time.Hour)
	return c
}

// Peer is one stored peer.
type Peer struct {
	hooks.PeerConfig
	// Disabled keeps the row but answers "unknown" (the key is refused,
	// and cut where it is installed).
	Disabled bool
	// Comment is free text for operators.
	Comment string
	// Added is when the peer was stored.
	Added time.Time
}

// Store is a PostgreSQL peer store. It is safe for concurrent use.
type Store struct {
	cfg      Config
	pool     *pgxpool.Pool
	connCfg  *pgx.ConnConfig // for WatchChanges' own connection
	redacted string

	health   health
	watching atomic.Int32 // WatchChanges sessions listening
}

var (
	_ hooks.Provider       = (*Store)(nil)
	_ hooks.AddrProvider   = (*Store)(nil)
	_ hooks.BatchProvider  = (*Store)(nil)
	_ hooks.ChangeNotifier = (*Store)(nil)
	_ hooks.StateStore     = (*Store)(nil)
)

// Open opens the store. A database that answers without the schema of
// this version is an error (ErrNoSchema); one that does not answer is
// not: the store starts down and lookups fail until it is reachable.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	cfg = cfg.withDefaults()
	pc, err := ParseURL(cfg.URL)
	if err != nil {
		return nil, err
	}
	if !containsParam(cfg.URL, "pool_max_conns") {
		pc.MaxConns = cfg.MaxConns
	}
	if !containsParam(cfg.URL, "connect_timeout") {
		pc.ConnConfig.ConnectTimeout = cfg.ConnectTimeout
	}
	pc.HealthCheckPeriod = 10 * time.Second
	if _, ok := pc.ConnConfig.RuntimeParams["application_name"]; !ok {
		pc.ConnConfig.RuntimeParams["application_name"] = "wghooks"
	}
	s := &Store{cfg: cfg, connCfg: pc.ConnConfig.Copy(), redacted: Redact(cfg.URL)}
	// The watcher's connection is told apart in pg_stat_activity.
	s.connCfg.RuntimeParams["application_name"] = pc.ConnConfig.RuntimeParams["application_name"] + " watch"
	s.health.logf = cfg.Logf
	s.health.name = s.redacted
	s.health.interval = cfg.ProbeInterval
	s.pool, err = pgxpool.NewWithConfig(context.Background(), pc)
	if err != nil {
		return nil, fmt.Errorf("failed to open peer store %s: %s", s.redacted, s.scrub(err))
	}
	qctx, cancel := context.WithTimeout(ctx, cfg.ConnectTimeout+cfg.QueryTimeout)
	defer cancel()
	err = checkSchema(qctx, s.pool, s.redacted)
	switch {
	case err == nil:
	case errors.Is(err, ErrNoSchema):
		s.pool.Close()
		return nil, fmt.Errorf("failed to open %w", err)
	case isDown(err):
		s.health.failed(s.scrub(err), time.Now())
	default:
		s.pool.Close()
		return nil, fmt.Errorf("failed to open peer store %s: %s", s.redacted, s.scrub(err))
	}
	return s, nil
}

// Close closes the pool; WatchChanges returns once its context ends.
func (s *Store) Close() { s.pool.Close() }

// Name is the store's URL with its password redacted.
func (s *Store) Name() string { return s.redacted }

// Watching reports whether a WatchChanges of this store is listening
// now, with its starting point read: a change made from now on reaches it.
func (s *Store) Watching() bool { return s.watching.Load() > 0 }

// Down reports whether the store is failing lookups fast.
func (s *Store) Down() bool { return s.health.isDown() }

// scrub is err's text without the URL's password.
func (s *Store) scrub(err error) string { return scrub(err.Error(), s.cfg.URL) }

// do runs one query with the query timeout, failing fast while the store
// is down (one probe per interval goes through), and records whether the
// server answered.
func (s *Store) do(ctx context.Context, what string, q func(ctx context.Context) error) error {
	now := time.Now()
	probe, err := s.health.admit(now)
	if err != nil {
		return fmt.Errorf("failed to %s: %w", what, err)
	}
	qctx, cancel := context.WithTimeout(ctx, s.cfg.QueryTimeout)
	defer cancel()
	err = q(qctx)
	switch {
	case err == nil || !isDown(err):
		// The server answered; an error of its own is not an outage.
		s.health.ok(time.Now())
		if err != nil {
			return fmt.Errorf("failed to %s: %s", what, s.explain(err))
		}
		return nil
	case ctx.Err() != nil:
		// The caller gave up first: that says nothing about the server.
		if probe {
			s.health.probeDone()
		}
		return fmt.Errorf("failed to %s: %s", what, s.scrub(err))
	}
	s.health.failed(s.scrub(err), time.Now())
	return fmt.Errorf("failed to %s: peer store %s unreachable: %s", what, s.redacted, s.scrub(err))
}

// explain is err's text, with what to do for a missing schema.
func (s *Store) explain(err error) string {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "42P01" {
		return fmt.Sprintf("peer store %s has no wghooks schema (%s): run `wghooks peers migrate -db URL`", s.redacted, pgErr.Message)
	}
	return s.scrub(err)
}

// isDown reports whether err says the server could not be reached or
// went away, as opposed to an error the server answered with.
func isDown(err error) bool {
	if err == nil || errors.Is(err, pgx.ErrNoRows) {
		return false
	}
	var connErr *pgconn.ConnectError
	if errors.As(err, &connErr) {
		return true // no connection, whatever the server said
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code[:2] {
		case "08", "57", "53": // connection exception, operator intervention, insufficient resources
			return true
		}
		return false
	}
	return !errors.Is(err, context.Canceled)
}

// peerColumns are a peer's columns as row reads them (row.cols). None of
// the names is in wghooks_peer_prefixes, so a join needs no qualifier.
const peerColumns = `allowed_ips, preshared_key, persistent_keepalive, endpoint, enabled`

// row is one peer's peerColumns.
type row struct {
	ips, ep string
	psk     []byte
	ka      int64
	enabled bool
}

// cols are the scan targets of front (the columns selected before
// peerColumns) and then of peerColumns.
func (r *row) cols(front ...any) []any {
	return append(front, &r.ips, &r.psk, &r.ka, &r.ep, &r.enabled)
}

// decode reads r as key's configuration (peerrow.Decode).
func (r *row) decode(key hooks.PublicKey) (hooks.PeerConfig, error) {
	return peerrow.Decode(key, r.ips, r.psk, r.ka, r.ep)
}

// LookupPeer implements hooks.Provider. A disabled peer is unknown.
func (s *Store) LookupPeer(ctx context.Context, key hooks.PublicKey) (hooks.PeerConfig, error) {
	var (
		cfg   hooks.PeerConfig
		found bool
		rerr  error
	)
	err := s.do(ctx, "look up peer "+key.String(), func(ctx context.Context) error {
		var r row
		err := s.pool.QueryRow(ctx, `SELECT `+peerColumns+` FROM wghooks_peers WHERE public_key = $1`, key[:]).
			Scan(r.cols()...)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		found = r.enabled
		if found {
			cfg, rerr = r.decode(key)
		}
		return nil
	})
	switch {
	case err != nil:
		return hooks.PeerConfig{}, err
	case !found:
		return hooks.PeerConfig{}, hooks.ErrUnknownPeer
	}
	return cfg, rerr
}

// LookupPeers implements hooks.BatchProvider: one query for all keys.
func (s *Store) LookupPeers(ctx context.Context, keys []hooks.PublicKey) ([]hooks.PeerResult, error) {
	out := make([]hooks.PeerResult, len(keys))
	for i := range out {
		out[i].Err = hooks.ErrUnknownPeer
	}
	index := make(map[hooks.PublicKey]int, len(keys))
	args := make([][]byte, len(keys))
	for i, k := range keys {
		index[k] = i
		args[i] = append([]byte(nil), k[:]...)
	}
	err := s.do(ctx, fmt.Sprintf("look up %d peers", len(keys)), func(ctx context.Context) error {
		rows, err := s.pool.Query(ctx, `SELECT public_key, `+peerColumns+` FROM wghooks_peers WHERE public_key = ANY($1)`, args)
		if err != nil {
			return err
		}
		var (
			k []byte
			r row
		)
		_, err = pgx.ForEachRow(rows, r.cols(&k), func() error {
			if len(k) != len(hooks.PublicKey{}) {
				return nil // the table's CHECK keeps keys 32 bytes
			}
			if i, ok := index[hooks.PublicKey(k)]; ok && r.enabled {
				out[i].Config, out[i].Err = r.decode(keys[i])
			}
			return nil
		})
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// LookupAddr implements hooks.AddrProvider: the enabled peer whose
// allowed IPs hold addr, by longest prefix. Two peers claiming the same
// longest prefix is an error naming both.
func (s *Store) LookupAddr(ctx context.Context, addr netip.Addr) (hooks.PeerConfig, error) {
	addr = addr.Unmap()
	if !addr.IsValid() || addr.Zone() != "" {
		return hooks.PeerConfig{}, fmt.Errorf("failed to look up address %q: not a plain IP address", addr)
	}
	var (
		found    hooks.PeerConfig
		foundLen = -1
		both     error
	)
	err := s.do(ctx, "look up address "+addr.String(), func(ctx context.Context) error {
		rows, err := s.pool.Query(ctx, `SELECT masklen(x.prefix), p.public_key, `+peerColumns+`
			FROM wghooks_peer_prefixes x JOIN wghooks_peers p ON p.public_key = x.public_key
			WHERE x.prefix >>= $1::inet AND p.enabled
			ORDER BY masklen(x.prefix) DESC`, addr.String())
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var (
				bits int
				k    []byte
				r    row
			)
			if err := rows.Scan(r.cols(&bits, &k)...); err != nil {
				return err
			}
			if foundLen >= 0 && bits != foundLen {
				break // a shorter prefix: the longest one is decided
			}
			if len(k) != 32 {
				continue
			}
			cfg, err := r.decode(hooks.PublicKey(k))
			if err != nil || !peerrow.ContainsAddr(cfg.AllowedIPs, addr) {
				continue
			}
			if foundLen >= 0 {
				both = fmt.Errorf("failed to look up address %s: both %s and %s claim it", addr, found.PublicKey, cfg.PublicKey)
				break
			}
			found, foundLen = cfg, bits
		}
		return rows.Err()
	})
	switch {
	case err != nil:
		return hooks.PeerConfig{}, err
	case both != nil:
		return hooks.PeerConfig{}, both
	case foundLen < 0:
		return hooks.PeerConfig{}, hooks.ErrUnknownPeer
	}
	return found, nil
}

// putBatch is how many peers one statement of Put writes.
const putBatch = 5000

// Put stores peers, replacing any with the same keys, in one transaction
// (a later duplicate in peers wins). Each peer's PublicKey must be set
// and its configuration valid. A row that would not change is not
// written, so gateways are not told about it.
func (s *Store) Put(ctx context.Context, peers ...Peer) error {
	last := make(map[hooks.PublicKey]int, len(peers))
	enc := make([]peerrow.Encoded, len(peers))
	for i, p := range peers {
		var err error
		if enc[i], err = peerrow.Encode(p.PeerConfig); err != nil {
			return err
		}
		last[p.PublicKey] = i
	}
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("failed to store peers in %s: %s", s.redacted, s.scrub(err))
	}
	defer tx.Rollback(context.Background())
	now := time.Now()
	for start := 0; start < len(peers); start += putBatch {
		var (
			keys, psks      [][]byte
			ips, eps, notes []string
			kas             []int32
			enabled         []bool
			added           []time.Time
		)
		for i := start; i < min(start+putBatch, len(peers)); i++ {
			p := peers[i]
			if last[p.PublicKey] != i {
				continue
			}
			keys = append(keys, append([]byte(nil), p.PublicKey[:]...))
			ips = append(ips, enc[i].AllowedIPs)
			psks = append(psks, enc[i].PresharedKey)
			kas = append(kas, int32(enc[i].Keepalive))
			eps = append(eps, enc[i].Endpoint)
			enabled = append(enabled, !p.Disabled)
			notes = append(notes, p.Comment)
			a := p.Added
			if a.IsZero() {
				a = now
			}
			added = append(added, a)
		}
		if len(keys) == 0 {
			continue
		}
		_, err := tx.Exec(ctx, `INSERT INTO wghooks_peers AS p
			(public_key, allowed_ips, preshared_key, persistent_keepalive, endpoint, enabled, comment, added)
			SELECT * FROM unnest($1::bytea[], $2::text[], $3::bytea[], $4::int[], $5::text[], $6::bool[], $7::text[], $8::timestamptz[])
			ON CONFLICT (public_key) DO UPDATE SET
				allowed_ips = EXCLUDED.allowed_ips, preshared_key = EXCLUDED.preshared_key,
				persistent_keepalive = EXCLUDED.persistent_keepalive, endpoint = EXCLUDED.endpoint,
				enabled = EXCLUDED.enabled, comment = EXCLUDED.comment
			WHERE (p.allowed_ips, p.preshared_key, p.persistent_keepalive, p.endpoint, p.enabled, p.comment)
				IS DISTINCT FROM (EXCLUDED.allowed_ips, EXCLUDED.preshared_key, EXCLUDED.persistent_keepalive,
					EXCLUDED.endpoint, EXCLUDED.enabled, EXCLUDED.comment)`,
			keys, ips, psks, kas, eps, enabled, notes, added)
		if err != nil {
			return fmt.Errorf("failed to store peers in %s: %s", s.redacted, s.explain(err))
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("failed to store peers in %s: %s", s.redacted, s.scrub(err))
	}
	return nil
}

// Delete removes the peer with key and reports whether it was there.
// Every gateway holding it cuts it (WatchChanges).
func (s *Store) Delete(ctx context.Context, key hooks.PublicKey) (bool, error) {
	tag, err := s.pool.Exec(ctx, `DELETE FROM wghooks_peers WHERE public_key = $1`, key[:])
	if err != nil {
		return false, fmt.Errorf("failed to delete peer %s from %s: %s", key, s.redacted, s.explain(err))
	}
	return tag.RowsAffected() > 0, nil
}

// SetEnabled enables or disables the peer with key and reports whether
// it is stored. A disabled peer is refused and cut like a removed one,
// but keeps its row.
func (s *Store) SetEnabled(ctx context.Context, key hooks.PublicKey, enabled bool) (bool, error) {
	tag, err := s.pool.Exec(ctx, `UPDATE wghooks_peers SET enabled = $2 WHERE public_key = $1 AND enabled <> $2`, key[:], enabled)
	if err != nil {
		return false, fmt.Errorf("failed to update peer %s in %s: %s", key, s.redacted, s.explain(err))
	}
	if tag.RowsAffected() > 0 {
		return true, nil
	}
	var n int
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM wghooks_peers WHERE public_key = $1`, key[:]).Scan(&n); err != nil {
		return false, fmt.Errorf("failed to update peer %s in %s: %s", key, s.redacted, s.explain(err))
	}
	return n > 0, nil
}

// Each calls fn for every stored peer in key order, streaming. A row
// that does not read is an error naming the peer; an error from fn stops
// it.
func (s *Store) Each(ctx context.Context, fn func(Peer) error) error {
	rows, err := s.pool.Query(ctx, `SELECT public_key, `+peerColumns+`, comment, added FROM wghooks_peers ORDER BY public_key`)
	if err != nil {
		return fmt.Errorf("failed to list peers of %s: %s", s.redacted, s.explain(err))
	}
	defer rows.Close()
	for rows.Next() {
		var (
			k    []byte
			r    row
			note string
			at   time.Time
		)
		if err := rows.Scan(append(r.cols(&k), &note, &at)...); err != nil {
			return fmt.Errorf("failed to list peers of %s: %s", s.redacted, s.scrub(err))
		}
		cfg, err := r.decode(hooks.PublicKey(k))
		if err != nil {
			return err
		}
		if err := fn(Peer{PeerConfig: cfg, Disabled: !r.enabled, Comment: note, Added: at}); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("failed to list peers of %s: %s", s.redacted, s.scrub(err))
	}
	return nil
}

// Count returns how many peers are stored.
func (s *Store) Count(ctx context.Context) (int64, error) {
	var n int64
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM wghooks_peers`).Scan(&n); err != nil {
		return 0, fmt.Errorf("failed to count peers of %s: %s", s.redacted, s.explain(err))
	}
	return n, nil
}

// health is the store's view of its server: up, or down since a time
// with the first error of the outage. Its lock is a leaf.
type health struct {
	logf     hooks.Logf
	name     string
	interval time.Duration // between probes while down

	mu        sync.Mutex
	down      bool
	since     time.Time
	why       string
	nextProbe time.Time
	probing   bool
}

// errDown is what lookups answer while the store is down.
type errDown struct {
	name, why string
	since     time.Time
}

func (e *errDown) Error() string {
	return fmt.Sprintf("peer store %s down since %s (refusing unknown keys): %s", e.name, e.since.UTC().Format(time.RFC3339), e.why)
}

// admit lets a query through while up, and while down one probe per
// interval (probe true); the others get an errDown at once.
func (h *health) admit(now time.Time) (probe bool, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.down {
		return false, nil
	}
	if !h.probing && !now.Before(h.nextProbe) {
		h.probing = true
		h.nextProbe = now.Add(h.interval)
		return true, nil
	}
	return false, &errDown{name: h.name, why: h.why, since: h.since}
}

func (h *health) probeDone() {
	h.mu.Lock()
	h.probing = false
	h.mu.Unlock()
}

// failed records that the server could not be reached.
func (h *health) failed(why string, now time.Time) {
	h.mu.Lock()
	first := !h.down
	if first {
		h.down, h.since, h.why = true, now, why
	}
	h.probing = false
	h.nextProbe = now.Add(h.interval)
	h.mu.Unlock()
	if first {
		h.logf.Printf("pgstore: peer store %s down, refusing unknown keys until it is back: %s", h.name, why)
	}
}

// ok records that the server answered.
func (h *health) ok(now time.Time) {
	h.mu.Lock()
	was, since := h.down, h.since
	h.down, h.probing = false, false
	h.mu.Unlock()
	if was {
		h.logf.Printf("pgstore: peer store %s reachable again after %v", h.name, now.Sub(since).Round(time.Millisecond))
	}
}

func (h *health) isDown() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.down
}
