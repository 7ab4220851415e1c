// Package endpoints is wghooks' endpoints that heal: hostname endpoints
// resolved and re-resolved by the device, failover between their
// addresses driven by WireGuard's own messages, and source addresses that
// follow the routes.
//
// A peer's endpoint may be a hostname ("vpn.example.com:51820", set with
// SetHost (the device's SetEndpointHost), Config.Hosts or the UAPI key
// wghooks_endpoint). The device keeps the name, resolves it on its own
// goroutine (never on a packet path), and treats every A and AAAA record
// as a candidate address, ordered for happy eyeballs (RFC 8305: IPv6
// first, families alternating).
// The address in use is upstream's ordinary endpoint, so `wg show` prints
// it as usual.
//
//  1. Resolution: at start, when the answer's TTL runs out (clamped to
//     [MinTTL, MaxTTL]), and at once (at most every 5 s) when the address
//     in use stops answering. When the address in use leaves the answer,
//     the peer moves to the first candidate.
//  2. Failover by WireGuard itself, no ICMP (failover.go): every handshake
//     initiation to a hostname peer is also sent, as an exact copy, to the
//     other candidates, staggered by Stagger, until a response arrives; a
//     copy that follows an unanswered initiation (upstream retries every
//     5 s) leaves at once. The responder answers the first copy to reach
//     it (it drops the others as replays), and upstream roams the peer to
//     the address the response came from.
//  3. Traffic without replies: when data has gone out for ReplyTimeout
//     with nothing heard back, the session's packets (and keepalives sent
//     every Stagger) are copied to the next candidate, one candidate per
//     Stagger; the first authenticated reply roams the peer there.
//  4. Fail-back: while a peer is on IPv4 and has an IPv6 candidate, its
//     next initiation goes to IPv6 first, every FailbackInterval; the
//     interval doubles (up to 10 min) each time the peer has to leave IPv6
//     again, so a flaky path cannot make it flap.
//
// Source addresses (srccache.go) are the other half: replies leave from
// the local address the peer contacted, and a route or address change
// resets that choice.
//
// Files: endpoints.go the feature's state and its UAPI keys; hosts.go
// hostname peers and their resolution loop; resolve.go the resolver's
// rules; failover.go and probe.go failover; srccache.go source addresses;
// config.go the settings.
package endpoints
