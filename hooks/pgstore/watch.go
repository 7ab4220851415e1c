package pgstore

// Changes pushed to every gateway (hooks.ChangeNotifier). The trigger of
// wghooks_peers writes one row per changed key to wghooks_peer_changes
// and notifies the channel once per transaction; a gateway LISTENs on a
// connection of its own and, on each notification (and every
// PollInterval without one), reads the rows it has not seen.
//
// Reading "seq > the last one seen" alone would miss a row: sequence
// numbers are taken when a writer inserts, not when it commits, so a slow
// writer can commit a lower seq after a faster one was read. So each row
// also carries its transaction id, and every read also takes the rows
// whose transaction finished since the last read (xid in [previous xmin,
// current xmin)): those are final, and the ones among them not seen yet
// are the late commits. The seen set holds only rows of transactions not
// yet below xmin, so it stays small; a writer that keeps a transaction
// open for long holds xmin back and the set grows, up to maxSeen, past
// which the watcher starts over from now and calls resync.
//
// A gateway that reconnects carries on from its cursors: what changed
// while it was away is read like any other change. One away for longer
// than half of ChangeRetention (the log may have been pruned) calls
// resync instead, and so does one that never reached the database
// before.

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/wghooks/wghooks/hooks"
)

const (
	minBackoff = 100 * time.Millisecond
	maxBackoff = 5 * time.Second
	// pollLimit bounds the rows of one read; a longer backlog is read in
	// several.
	pollLimit = 10000
	// changedChunk bounds the keys of one changed call.
	changedChunk = 1000
	// pruneEvery is how often a watcher prunes the change log.
	pruneEvery = 10 * time.Minute
	// maxSeen bounds the rows remembered above xmin.
	maxSeen = 1 << 20
)

type watcher struct {
	s       *Store
	changed func([]hooks.PublicKey)
	resync  func()

	started bool  // cursors are set
	tried   bool  // a connection was attempted
	maxSeq  int64 // highest seq read
	xmin    int64 // every transaction below it was read
	seen    map[int64]int64
	lastOK  time.Time
	pruned  time.Time
}

// WatchChanges implements hooks.ChangeNotifier. It reconnects with
// backoff (100 ms doubling to 5 s, with jitter) until ctx is done; while
// it cannot reach the database, the store is down (lookups fail fast).
func (s *Store) WatchChanges(ctx context.Context, changed func(keys []hooks.PublicKey), resync func()) error {
	w := &watcher{s: s, changed: changed, resync: resync, seen: make(map[int64]int64)}
	backoff := minBackoff
	lastErr := ""
	for {
		connected, err := w.session(ctx)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if connected {
			backoff = minBackoff
		}
		if isDown(err) {
			s.health.failed(s.scrub(err), time.Now())
		} else if msg := s.explain(err); msg != lastErr {
			// A database that answers but cannot be watched (no schema):
			// said once per kind, retried at the slowest pace.
			lastErr = msg
			s.cfg.Logf.Printf("pgstore: failed to watch %s for changes: %s", s.redacted, msg)
			backoff = maxBackoff
		}
		d := backoff/2 + rand.N(backoff/2+1)
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		backoff = min(backoff*2, maxBackoff)
	}
}

// session is one connection's life: connect, LISTEN, catch up, then read
// on each notification until an error. connected says whether it got as
// far as listening.
func (w *watcher) session(ctx context.Context) (connected bool, err error) {
	s := w.s
	tried := w.tried
	w.tried = true
	c, err := pgx.ConnectConfig(ctx, s.connCfg)
	if err != nil {
		return false, err
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), time.Second)
		c.Close(cctx)
		cancel()
	}()
	qctx, cancel := context.WithTimeout(ctx, s.cfg.QueryTimeout)
	_, err = c.Exec(qctx, "LISTEN "+Channel)
	cancel()
	if err != nil {
		return false, err
	}
	now := time.Now()
	switch {
	case !w.started:
		if err := w.start(ctx, c); err != nil {
			return false, err
		}
		if tried {
			// The device ran without the store until now.
			w.resync()
		}
	case now.Sub(w.lastOK) > s.cfg.ChangeRetention/2:
		if err := w.start(ctx, c); err != nil {
			return false, err
		}
		w.resync()
	}
	s.health.ok(now)
	s.watching.Add(1)
	defer s.watching.Add(-1)
	for {
		if err := w.poll(ctx, c); err != nil {
			return true, err
		}
		w.lastOK = time.Now()
		if time.Since(w.pruned) > pruneEvery {
			w.prune(ctx, c)
		}
		wctx, cancel := context.WithTimeout(ctx, s.cfg.PollInterval)
		_, err := c.WaitForNotification(wctx)
		cancel()
		if ctx.Err() != nil {
			return true, ctx.Err()
		}
		if err != nil && !errors.Is(err, context.DeadlineExceeded) && !pgconnTimeout(err) {
			return true, err
		}
	}
}

// start sets the cursors to now: changes before it are not read.
func (w *watcher) start(ctx context.Context, c *pgx.Conn) error {
	qctx, cancel := context.WithTimeout(ctx, w.s.cfg.QueryTimeout)
	defer cancel()
	err := c.QueryRow(qctx, `SELECT coalesce((SELECT max(seq) FROM wghooks_peer_changes), 0),
		pg_snapshot_xmin(pg_current_snapshot())::text::bigint`).Scan(&w.maxSeq, &w.xmin)
	if err != nil {
		return err
	}
	clear(w.seen)
	w.started = true
	return nil
}

// poll reads the rows not seen yet, in as many reads as the backlog
// needs, and hands their keys to changed.
func (w *watcher) poll(ctx context.Context, c *pgx.Conn) error {
	if len(w.seen) > maxSeen {
		if err := w.start(ctx, c); err != nil {
			return err
		}
		w.resync()
	}
	for range 1000 {
		full, err := w.pollOnce(ctx, c)
		if err != nil || !full {
			return err
		}
	}
	return nil
}

func (w *watcher) pollOnce(ctx context.Context, c *pgx.Conn) (full bool, err error) {
	qctx, cancel := context.WithTimeout(ctx, w.s.cfg.QueryTimeout)
	defer cancel()
	rows, err := c.Query(qctx, `WITH snap AS (SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint AS xmin)
		SELECT snap.xmin, c.seq, c.public_key, c.xid FROM snap LEFT JOIN LATERAL (
			SELECT seq, public_key, xid FROM wghooks_peer_changes
			WHERE seq > $1 OR (xid >= $2 AND xid < snap.xmin)
			ORDER BY seq LIMIT $3) c ON true`, w.maxSeq, w.xmin, pollLimit)
	if err != nil {
		return false, err
	}
	var (
		xmin     int64
		n        int
		keys     []hooks.PublicKey
		dup      = make(map[hooks.PublicKey]struct{})
		seq, xid *int64
		k        []byte
	)
	_, err = pgx.ForEachRow(rows, []any{&xmin, &seq, &k, &xid}, func() error {
		if seq == nil {
			return nil // no rows: only the snapshot
		}
		n++
		if _, ok := w.seen[*seq]; ok {
			return nil
		}
		w.seen[*seq] = *xid
		w.maxSeq = max(w.maxSeq, *seq)
		if len(k) != 32 {
			return nil
		}
		key := hooks.PublicKey(k)
		if _, ok := dup[key]; !ok {
			dup[key] = struct{}{}
			keys = append(keys, key)
		}
		return nil
	})
	if err != nil {
		return false, err
	}
	full = n >= pollLimit
	if !full {
		// Every transaction below xmin is now read: forget their rows.
		w.xmin = max(w.xmin, xmin)
		for seq, xid := range w.seen {
			if xid < w.xmin {
				delete(w.seen, seq)
			}
		}
	}
	for len(keys) > 0 {
		m := min(len(keys), changedChunk)
		w.changed(keys[:m])
		keys = keys[m:]
	}
	return full, nil
}

// prune deletes changes older than the retention; any gateway may.
func (w *watcher) prune(ctx context.Context, c *pgx.Conn) {
	w.pruned = time.Now()
	qctx, cancel := context.WithTimeout(ctx, 10*w.s.cfg.QueryTimeout)
	defer cancel()
	c.Exec(qctx, `DELETE FROM wghooks_peer_changes WHERE at < now() - make_interval(secs => $1)`,
		w.s.cfg.ChangeRetention.Seconds())
}

// pgconnTimeout reports whether err is a timeout of the wait, which
// leaves the connection usable.
func pgconnTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}
