package jit

// Changes pushed by the provider (hooks.ChangeNotifier). When the
// provider can tell the device what changed, a removed or disabled key is
// cut, and a changed answer applied, within a second instead of at the
// next revalidation: the provider's WatchChanges runs on a goroutine of
// the device's, and each key it names that the device holds as a
// just-in-time peer is revalidated at once, through the same path as
// revalidation (revalidate in evict.go), so the rules of a first install
// hold (never a static peer's key or addresses). A key the device does not
// hold only loses its cached "unknown" answer, so a key just added is
// asked about at its next initiation. resync revalidates every installed
// just-in-time peer.
//
// changed and resync only record what to do and wake the worker (they
// must not wait on the provider); the pending set is bounded, and past
// the bound turns into one resync.

import (
	"context"
	"errors"
	"sync"

	"github.com/wghooks/wghooks/device/feature"
	"github.com/wghooks/wghooks/hooks"
)

// maxPendingChanges bounds the keys waiting for revalidation; more at
// once revalidate everything instead.
const maxPendingChanges = 1 << 16

type changeQueue struct {
	kick chan struct{}

	// mu is a leaf.
	mu      sync.Mutex
	pending map[feature.Key]struct{}
	all     bool // resync: every installed peer
}

// startWatch runs the provider's WatchChanges when it has one.
func (j *JIT) startWatch() {
	n, ok := j.cfg.Provider.(hooks.ChangeNotifier)
	if !ok {
		return
	}
	q := &changeQueue{kick: make(chan struct{}, 1), pending: make(map[feature.Key]struct{})}
	j.host.Go(func() { j.applyChanges(q) })
	j.host.Go(func() {
		err := n.WatchChanges(j.ctx, q.changed, q.resync)
		if err != nil && !errors.Is(err, context.Canceled) && j.ctx.Err() == nil {
			j.host.Errorf("jit: not watching the provider for changes, revalidation every %v is the backstop: %v",
				j.cfg.RevalidateInterval, err)
		}
	})
}

func (q *changeQueue) changed(keys []hooks.PublicKey) {
	q.mu.Lock()
	for _, k := range keys {
		if q.all {
			break
		}
		if len(q.pending) >= maxPendingChanges {
			q.all, q.pending = true, make(map[feature.Key]struct{})
			break
		}
		q.pending[feature.Key(k)] = struct{}{}
	}
	q.mu.Unlock()
	q.wake()
}

func (q *changeQueue) resync() {
	q.mu.Lock()
	q.all, q.pending = true, make(map[feature.Key]struct{})
	q.mu.Unlock()
	q.wake()
}

func (q *changeQueue) wake() {
	select {
	case q.kick <- struct{}{}:
	default:
	}
}

// take empties the queue.
func (q *changeQueue) take() (keys map[feature.Key]struct{}, all bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	keys, all = q.pending, q.all
	q.pending, q.all = make(map[feature.Key]struct{}), false
	return keys, all
}

// applyChanges revalidates what the provider said changed, one batch at
// a time, until the device closes.
func (j *JIT) applyChanges(q *changeQueue) {
	for {
		select {
		case <-j.host.Done():
			return
		case <-q.kick:
		}
		pending, all := q.take()
		var keys []feature.Key
		j.mu.Lock()
		if all {
			for k := range j.peers {
				keys = append(keys, k)
			}
		}
		for k := range pending {
			if _, held := j.peers[k]; held {
				if !all {
					keys = append(keys, k)
				}
				continue
			}
			// Not held: only forget "unknown", so an added key is asked
			// about at its next initiation on every gateway.
			delete(j.negative, k)
		}
		j.mu.Unlock()
		if len(keys) > 0 {
			j.host.Verbosef("jit: the provider changed %d installed peers; revalidating them", len(keys))
			j.revalidate(keys)
		}
	}
}
