package jit

// Asking the provider: one key at a time, timed and bounded, its answer
// checked; the negative cache and removals racing a lookup.

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/wghooks/wghooks/device/feature"
	"github.com/wghooks/wghooks/hooks"
)

type lookupCall struct {
	done chan struct{}
	cfg  hooks.PeerConfig
	err  error
}

// lookup asks the provider about key, merging concurrent asks of the same
// key into one call. The answer is validated: invalid data is an error.
func (j *JIT) lookup(key feature.Key) (hooks.PeerConfig, error) {
	r := j.merged([]feature.Key{key}, func([]feature.Key) []lookupResult {
		start := time.Now()
		cfg, err := withSlot(j, key, func() (hooks.PeerConfig, error) { return j.callProvider(key) })
		j.countLookup(uint64(time.Since(start)), err)
		return []lookupResult{{cfg, err}}
	})[0]
	return r.cfg, r.err
}

// countLookup counts one key's lookup that took lat nanoseconds (a
// batch's whole call for each of its keys) and ended with err.
func (j *JIT) countLookup(lat uint64, err error) {
	j.c.ProviderLookups.Add(1)
	j.c.ProviderLatencyNanos.Add(lat)
	if err != nil && !errors.Is(err, hooks.ErrUnknownPeer) {
		j.c.ProviderErrors.Add(1)
	}
}

// callProvider runs one provider call with the lookup timeout. The call
// runs on a goroutine of its own so a provider that ignores its context
// costs that goroutine, not the device's; a panic is an error.
func (j *JIT) callProvider(key feature.Key) (hooks.PeerConfig, error) {
	cfg, err := timedCall(j, func(ctx context.Context) (hooks.PeerConfig, error) {
		return j.cfg.Provider.LookupPeer(ctx, hooks.PublicKey(key))
	})
	return j.checkAnswer(key, cfg, err)
}

// checkAnswer is the provider's answer about key as the device takes it:
// ErrUnknownPeer as it is, another error or invalid data as a failed
// lookup.
func (j *JIT) checkAnswer(key feature.Key, cfg hooks.PeerConfig, err error) (hooks.PeerConfig, error) {
	if err != nil {
		if errors.Is(err, hooks.ErrUnknownPeer) {
			return cfg, err
		}
		return cfg, fmt.Errorf("failed to look up %s: %w", feature.ShortKey(key), err)
	}
	if err := cfg.Validate(hooks.PublicKey(key)); err != nil {
		return cfg, fmt.Errorf("failed to look up %s: %w", feature.ShortKey(key), err)
	}
	return cfg, nil
}

// timedCall runs one provider call with the lookup timeout, on a
// goroutine of its own; a panic is an error.
func timedCall[T any](j *JIT, call func(ctx context.Context) (T, error)) (T, error) {
	ctx, cancel := context.WithTimeout(j.ctx, j.cfg.LookupTimeout)
	defer cancel()
	type result struct {
		v   T
		err error
	}
	res := make(chan result, 1)
	go func() {
		var r result
		defer func() {
			if p := recover(); p != nil {
				r.err = fmt.Errorf("provider panicked: %v", p)
			}
			res <- r
		}()
		r.v, r.err = call(ctx)
	}()
	select {
	case r := <-res:
		return r.v, r.err
	case <-ctx.Done():
		var zero T
		return zero, ctx.Err()
	}
}

func (j *JIT) setNegative(key feature.Key, ttl time.Duration) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if len(j.negative) >= maxNegative {
		now := time.Now()
		for k, until := range j.negative {
			if now.After(until) {
				delete(j.negative, k)
			}
		}
		if len(j.negative) >= maxNegative {
			return
		}
	}
	j.negative[key] = time.Now().Add(ttl)
}

func (j *JIT) removedSince(key feature.Key, t time.Time) bool {
	j.mu.Lock()
	defer j.mu.Unlock()
	at, ok := j.removed[key]
	return ok && !at.Before(t)
}
