package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/wghooks/wghooks/hooks"
	"github.com/wghooks/wghooks/hooks/pgstore"
	"github.com/wghooks/wghooks/hooks/sqlstore"
)

// peerStore is what `wghooks peers` needs of a store, SQLite or
// PostgreSQL alike.
type peerStore interface {
	// put stores peers; disabled marks them so (PostgreSQL only).
	put(ctx context.Context, peers []sqlstore.Peer, disabled bool) error
	delete(ctx context.Context, key hooks.PublicKey) (bool, error)
	each(ctx context.Context, fn func(p sqlstore.Peer, disabled bool) error) error
	close()
}

type sqliteStore struct{ s *sqlstore.Store }

func (s sqliteStore) put(ctx context.Context, peers []sqlstore.Peer, _ bool) error {
	return s.s.Put(ctx, peers...)
}

func (s sqliteStore) delete(ctx context.Context, key hooks.PublicKey) (bool, error) {
	return s.s.Delete(ctx, key)
}

func (s sqliteStore) each(ctx context.Context, fn func(sqlstore.Peer, bool) error) error {
	return s.s.Each(ctx, func(p sqlstore.Peer) error { return fn(p, false) })
}

func (s sqliteStore) close() { s.s.Close() }

type pgStore struct{ s *pgstore.Store }

// openPG opens a PostgreSQL store for one command.
func openPG(url string) (peerStore, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := pgstore.Open(ctx, pgstore.Config{URL: url, QueryTimeout: time.Minute})
	if err != nil {
		return nil, err
	}
	return pgStore{s}, nil
}

func (s pgStore) put(ctx context.Context, peers []sqlstore.Peer, disabled bool) error {
	out := make([]pgstore.Peer, len(peers))
	for i, p := range peers {
		out[i] = pgstore.Peer{PeerConfig: p.PeerConfig, Comment: p.Comment, Added: p.Added, Disabled: disabled}
	}
	return s.s.Put(ctx, out...)
}

func (s pgStore) delete(ctx context.Context, key hooks.PublicKey) (bool, error) {
	return s.s.Delete(ctx, key)
}

func (s pgStore) each(ctx context.Context, fn func(sqlstore.Peer, bool) error) error {
	return s.s.Each(ctx, func(p pgstore.Peer) error {
		return fn(sqlstore.Peer{PeerConfig: p.PeerConfig, Comment: p.Comment, Added: p.Added}, p.Disabled)
	})
}

func (s pgStore) close() { s.s.Close() }

// storeName names the store in messages, a URL without its password.
func (p *peersCmd) storeName() string {
	if p.pg {
		return pgstore.Redact(p.path)
	}
	return p.path
}

// runPeersMigrate applies the PostgreSQL store's schema migrations: the
// only way the schema changes (gateways never migrate).
func runPeersMigrate(url string, args []string, out io.Writer) error {
	if len(args) != 0 {
		return fmt.Errorf("usage: wghooks peers -db postgres://... migrate")
	}
	if url == "" {
		url = os.Getenv(sqlstore.EnvPath)
	}
	if !pgstore.IsURL(url) {
		return fmt.Errorf("failed to migrate: want -db postgres://... (or $%s); a SQLite store needs no migration", sqlstore.EnvPath)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	applied, err := pgstore.Migrate(ctx, url)
	if err != nil {
		return err
	}
	if len(applied) == 0 {
		fmt.Fprintf(out, "%s: schema at version %d, nothing to do\n", pgstore.Redact(url), pgstore.SchemaVersion)
		return nil
	}
	fmt.Fprintf(out, "%s: applied schema versions %v, now at version %d\n", pgstore.Redact(url), applied, pgstore.SchemaVersion)
	return nil
}
