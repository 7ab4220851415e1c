package testkit

import (
	"context"
	"sync"

	"github.com/wghooks/wghooks/hooks"
)

// CountingStore is a peer store that counts how the device asked it: one
// key at a time (hooks.Provider) or in batches (hooks.BatchProvider).
type CountingStore struct {
	store interface {
		hooks.Provider
		hooks.BatchProvider
	}
	mu                       sync.Mutex
	single, batched, batches int
}

// NewCountingStore counts the lookups that reach store.
func NewCountingStore(store interface {
	hooks.Provider
	hooks.BatchProvider
}) *CountingStore {
	return &CountingStore{store: store}
}

// LookupPeer implements hooks.Provider.
func (s *CountingStore) LookupPeer(ctx context.Context, k hooks.PublicKey) (hooks.PeerConfig, error) {
	s.mu.Lock()
	s.single++
	s.mu.Unlock()
	return s.store.LookupPeer(ctx, k)
}

// LookupPeers implements hooks.BatchProvider.
func (s *CountingStore) LookupPeers(ctx context.Context, keys []hooks.PublicKey) ([]hooks.PeerResult, error) {
	s.mu.Lock()
	s.batched += len(keys)
	s.batches++
	s.mu.Unlock()
	return s.store.LookupPeers(ctx, keys)
}

// Counts returns the keys asked one at a time, the keys asked in
// batches, and the batches.
func (s *CountingStore) Counts() (single, batched, batches int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.single, s.batched, s.batches
}
