package hooks

import (
	"context"
	"net/netip"
	"time"
)

// The optional interfaces below are what a Provider shared by a fleet of
// gateways (one store, many machines) also implements. The device checks
// for each with a type assertion; a Provider without one keeps the
// behaviour it has without it.

// BatchProvider is a Provider that answers many keys in one round trip.
// When several lookups are waiting (a mass arrival: a gateway restart, a
// backend failover), the device asks for them together instead of one at
// a time.
//
// Contract, on top of Provider's:
//   - LookupPeers answers each key in keys with one PeerResult, in the
//     same order (len(result) == len(keys)); a key it does not know gets
//     Err = ErrUnknownPeer.
//   - A non-nil error means the whole batch "cannot tell now", as a
//     LookupPeer error other than ErrUnknownPeer does.
//   - keys holds no duplicates and at most the device's batch size.
type BatchProvider interface {
	LookupPeers(ctx context.Context, keys []PublicKey) ([]PeerResult, error)
}

// PeerResult is one key's answer in a batch: the configuration, or why
// there is none.
type PeerResult struct {
	Config PeerConfig
	Err    error
}

// ChangeNotifier is a Provider that tells the device when its answers
// change, so a removed or disabled key is cut, and a changed one applied,
// within a second instead of at the next revalidation.
//
// Contract:
//   - WatchChanges blocks until ctx is done, calling changed with the keys
//     whose answer may have changed (added, changed, disabled or removed)
//     and resync when it cannot tell which (it lost its connection and
//     missed changes it cannot list); it returns ctx's error, or an error
//     only when watching is impossible (the device then relies on
//     revalidation and logs why once).
//   - The device answers changed by asking the provider again about each
//     key it holds (keys it does not hold are ignored), under the same
//     rules as revalidation; resync revalidates every peer it installed.
//   - changed and resync are called from WatchChanges' goroutine, never
//     concurrently, and return without waiting on the provider.
type ChangeNotifier interface {
	WatchChanges(ctx context.Context, changed func(keys []PublicKey), resync func()) error
}

// PeerState is what a gateway learned about one peer and another gateway
// with the same key can use: where the peer was last heard from, and when
// its last handshake completed.
type PeerState struct {
	Key           PublicKey
	Endpoint      netip.AddrPort
	LastHandshake time.Time
	// Gateway is the public key of the gateway (the device's own key)
	// that learned it. Only a gateway with that key can use it: a client
	// answers an initiation only from the key it has configured.
	Gateway PublicKey
}

// StateStore is a Provider that keeps the fleet's learned state, so a
// gateway that replaces another (same key, the address moved to it, no
// local state file) can send one initiation to each recently active peer
// and bring roaming clients back in one round trip.
//
// Contract:
//   - SavePeerState records states (a batch; later LastHandshake wins per
//     key and Gateway); each state names its Gateway. It is called off
//     the packet paths, periodically and on drain.
//   - LoadPeerState returns the states written with Gateway == gateway
//     whose LastHandshake is at or after since, at most limit of them,
//     most recent first. State written under another gateway key (another
//     fleet sharing the database, a misconfigured machine), or before the
//     store recorded the writer's key, is never returned.
//   - Both must return when ctx is done.
type StateStore interface {
	SavePeerState(ctx context.Context, states []PeerState) error
	LoadPeerState(ctx context.Context, gateway PublicKey, since time.Time, limit int) ([]PeerState, error)
}
