package pgstore

// Versioned schema migrations. Each migration runs once, in a
// transaction of its own, under an advisory lock (two migrators wait for
// each other), and records its version in wghooks_schema_version. Only
// Migrate (`wghooks peers migrate`) changes the schema; a gateway checks
// the version at Open and refuses a database without it, or one older or
// newer than it knows, with an error saying what to do.

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// migrations are the schema's versions, in order: migrations[i] makes
// version i+1. Never edit one that shipped; add the next.
var migrations = []string{
	// 1: peers, their address index, the change log with its trigger and
	// notification, and the fleet's learned state.
	`
CREATE TABLE wghooks_peers (
	public_key           bytea PRIMARY KEY CHECK (length(public_key) = 32),
	allowed_ips          text NOT NULL DEFAULT '',
	preshared_key        bytea CHECK (preshared_key IS NULL OR length(preshared_key) = 32),
	persistent_keepalive integer NOT NULL DEFAULT 0,
	endpoint             text NOT NULL DEFAULT '',
	enabled              boolean NOT NULL DEFAULT true,
	comment              text NOT NULL DEFAULT '',
	added                timestamptz NOT NULL DEFAULT now()
);

-- One row per allowed IP prefix, kept by the trigger below, for lookups
-- by address (longest prefix first).
CREATE TABLE wghooks_peer_prefixes (
	public_key bytea NOT NULL,
	prefix     cidr NOT NULL,
	PRIMARY KEY (public_key, prefix)
);
CREATE INDEX wghooks_peer_prefixes_prefix ON wghooks_peer_prefixes USING gist (prefix inet_ops);

-- The change counter: one row per changed peer. xid is the writing
-- transaction's, so a reader can tell when no older writer is still open.
CREATE TABLE wghooks_peer_changes (
	seq        bigserial PRIMARY KEY,
	public_key bytea NOT NULL,
	xid        bigint NOT NULL DEFAULT pg_current_xact_id()::text::bigint,
	at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX wghooks_peer_changes_xid ON wghooks_peer_changes (xid);
CREATE INDEX wghooks_peer_changes_at ON wghooks_peer_changes (at);

CREATE FUNCTION wghooks_peer_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF TG_OP = 'DELETE' THEN
		DELETE FROM wghooks_peer_state WHERE public_key = OLD.public_key;
	END IF;
	IF TG_OP <> 'INSERT' THEN
		DELETE FROM wghooks_peer_prefixes WHERE public_key = OLD.public_key;
		INSERT INTO wghooks_peer_changes (public_key) VALUES (OLD.public_key);
	END IF;
	IF TG_OP <> 'DELETE' THEN
		BEGIN
			INSERT INTO wghooks_peer_prefixes (public_key, prefix)
			SELECT DISTINCT NEW.public_key, network(trim(p)::inet)
			FROM unnest(string_to_array(NEW.allowed_ips, ',')) AS p
			WHERE trim(p) <> '';
		EXCEPTION WHEN invalid_text_representation THEN
			NULL; -- unreadable: not indexed; a lookup of the key says why
		END;
		IF TG_OP = 'INSERT' OR OLD.public_key <> NEW.public_key THEN
			INSERT INTO wghooks_peer_changes (public_key) VALUES (NEW.public_key);
		END IF;
	END IF;
	-- One notification per transaction: identical payloads are merged.
	PERFORM pg_notify('wghooks_peers', '');
	RETURN NULL;
END $$;

CREATE TRIGGER wghooks_peer_changed AFTER INSERT OR UPDATE OR DELETE ON wghooks_peers
	FOR EACH ROW EXECUTE FUNCTION wghooks_peer_changed();

CREATE TABLE wghooks_peer_state (
	public_key     bytea PRIMARY KEY CHECK (length(public_key) = 32),
	endpoint       text NOT NULL DEFAULT '',
	last_handshake timestamptz NOT NULL,
	updated        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX wghooks_peer_state_last ON wghooks_peer_state (last_handshake DESC);
`,
	// 2: each state row names the gateway key that wrote it, one row per
	// peer and gateway key, so a takeover reads only its own fleet's
	// state. Rows written before keep an empty gateway_key and are never
	// read for a takeover (nothing says which key learned them).
	`
ALTER TABLE wghooks_peer_state
	ADD COLUMN gateway_key bytea NOT NULL DEFAULT ''::bytea
		CHECK (length(gateway_key) IN (0, 32));
ALTER TABLE wghooks_peer_state ALTER COLUMN gateway_key DROP DEFAULT;
ALTER TABLE wghooks_peer_state DROP CONSTRAINT wghooks_peer_state_pkey;
ALTER TABLE wghooks_peer_state ADD PRIMARY KEY (public_key, gateway_key);
DROP INDEX wghooks_peer_state_last;
CREATE INDEX wghooks_peer_state_gateway_last ON wghooks_peer_state (gateway_key, last_handshake DESC);
`,
}

// SchemaVersion is the schema version this package reads and writes.
var SchemaVersion = len(migrations)

// Channel is the notification channel the change trigger signals.
const Channel = "wghooks_peers"

// migrateLock is the advisory lock key migrators take.
const migrateLock = 0x77676870 // "wghp"

// ErrNoSchema is returned (wrapped) by Open for a database without the
// wghooks schema, or with another version of it.
var ErrNoSchema = errors.New("no wghooks schema")

// Migrate brings the database at url to SchemaVersion and returns the
// versions it applied (none when it was current).
func Migrate(ctx context.Context, url string) ([]int, error) {
	cfg, err := ParseURL(url)
	if err != nil {
		return nil, err
	}
	c, err := pgx.ConnectConfig(ctx, cfg.ConnConfig)
	if err != nil {
		return nil, fmt.Errorf("failed to migrate peer store %s: %s", Redact(url), scrub(err.Error(), url))
	}
	defer c.Close(context.Background())
	if _, err := c.Exec(ctx, `CREATE TABLE IF NOT EXISTS wghooks_schema_version (
		version integer PRIMARY KEY,
		applied timestamptz NOT NULL DEFAULT now())`); err != nil {
		return nil, fmt.Errorf("failed to migrate peer store %s: %w", Redact(url), err)
	}
	var applied []int
	for i, m := range migrations {
		v := i + 1
		done, err := migrateOne(ctx, c, v, m)
		if err != nil {
			return applied, fmt.Errorf("failed to migrate peer store %s to version %d: %w", Redact(url), v, err)
		}
		if done {
			applied = append(applied, v)
		}
	}
	return applied, nil
}

// migrateOne applies migration v in one transaction unless it is
// recorded, and reports whether it did.
func migrateOne(ctx context.Context, c *pgx.Conn, v int, sql string) (bool, error) {
	tx, err := c.Begin(ctx)
	if err != nil {
		return false, err
	}
	defer tx.Rollback(context.Background())
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(migrateLock)); err != nil {
		return false, err
	}
	var n int
	if err := tx.QueryRow(ctx, `SELECT count(*) FROM wghooks_schema_version WHERE version = $1`, v).Scan(&n); err != nil {
		return false, err
	}
	if n > 0 {
		return false, nil
	}
	if _, err := tx.Exec(ctx, sql); err != nil {
		return false, err
	}
	if _, err := tx.Exec(ctx, `INSERT INTO wghooks_schema_version (version) VALUES ($1)`, v); err != nil {
		return false, err
	}
	return true, tx.Commit(ctx)
}

// querier is what a pool, a connection and a transaction offer.
type querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// checkSchema returns an error wrapping ErrNoSchema unless the database
// has exactly SchemaVersion.
func checkSchema(ctx context.Context, q querier, redacted string) error {
	var v *int
	err := q.QueryRow(ctx, `SELECT max(version) FROM wghooks_schema_version`).Scan(&v)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "42P01" { // undefined_table
		return fmt.Errorf("peer store %s: %w: run `wghooks peers migrate -db URL` once (gateways never change the schema)", redacted, ErrNoSchema)
	}
	if err != nil {
		return err
	}
	switch {
	case v == nil:
		return fmt.Errorf("peer store %s: %w (wghooks_schema_version is empty): run `wghooks peers migrate -db URL`", redacted, ErrNoSchema)
	case *v < SchemaVersion:
		return fmt.Errorf("peer store %s: %w of version %d: this wghooks needs version %d; run `wghooks peers migrate -db URL`", redacted, ErrNoSchema, *v, SchemaVersion)
	case *v > SchemaVersion:
		return fmt.Errorf("peer store %s: %w of version %d: newer than this wghooks knows (%d); upgrade wghooks", redacted, ErrNoSchema, *v, SchemaVersion)
	}
	return nil
}
