package hooks

import (
	"context"
	"net/netip"
	"time"
)

// Resolver turns the host part of a peer's hostname endpoint into
// addresses. The device calls it on its own resolver goroutine, never on a
// packet path, with a context that carries a deadline (Endpoints
// ResolveTimeout, 5 s by default) and is cancelled when the device closes.
//
// Resolve may block until ctx is done, and must return once it is: a
// Resolver that ignores ctx keeps its goroutine until it returns, although
// the device no longer waits for it. It must not call into the device.
// It may be called concurrently for different hosts.
//
// An error, or an Answer without addresses, keeps the candidates the peer
// already has; the device retries with backoff and reports the error.
type Resolver interface {
	Resolve(ctx context.Context, host string) (Answer, error)
}

// Answer is the result of one resolution.
type Answer struct {
	// Addrs are all A and AAAA records, in the order the server gave them.
	// The device orders them for happy eyeballs (IPv6 first, families
	// interleaved) and dedupes them.
	Addrs []netip.Addr

	// TTL is how long the answer may be cached: the smallest TTL of the
	// records. Zero means unknown; the device then uses its default.
	TTL time.Duration
}

// ResolverFunc adapts a function to the Resolver interface.
type ResolverFunc func(ctx context.Context, host string) (Answer, error)

// Resolve calls f.
func (f ResolverFunc) Resolve(ctx context.Context, host string) (Answer, error) {
	return f(ctx, host)
}
