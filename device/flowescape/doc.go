// Package flowescape is the client side of running behind a UDP load
// balancer: flow escape.
//
// Servers sharing one key behind a flow-hashing balancer (AWS NLB and the
// like) look like one server to a client, until the backend carrying the
// client's flow dies: the balancer keeps that flow pinned to the dead
// backend for as long as packets keep arriving on it, and a WireGuard
// client with keepalives never stops sending. Moving to a new local source
// port makes a new flow, which the balancer hashes to a healthy backend;
// that backend holds the same key and answers a fresh handshake.
//
// The watcher tracks each destination endpoint (address and port) with
// stamps set on the packet goroutines, ordered by one sequence per
// endpoint: the latest data batch sent (keepalives excluded: nothing
// answers them), the latest handshake initiation sent, the latest
// datagram of any type received from it, and the latest handshake
// response. Each endpoint also measures its round trip (feature.Path:
// initiation to response, data out to anything back). A goroutine samples
// them every 20 ms, only while there is traffic or something unresolved,
// and decides in the pure flowWatch.step:
//
//  1. Strikes: data in doubt (feature.Path: two sends unanswered for a
//     round-trip timeout, RTO = SRTT + 4·RTTVAR, at least 100 ms) is one;
//     each initiation left unanswered for 3·RTO is one (a peer with other
//     addresses moves there at 2·RTO: endpoint failover goes first).
//  2. One strike from silence alone asks for a probe: a handshake
//     initiation to the peers at that endpoint. If upstream's 5 s limit on
//     initiations swallows it, the next sample forces it (keypairs
//     expired first). A probe answered by a handshake while the data
//     stays unanswered proves the flow one-way, not dead: that endpoint
//     then waits for a silence of at least 1 s, doubling up to 16 s, and
//     halving again every 2 minutes.
//  3. Two strikes escape: silence plus an unanswered probe (about 4·RTO,
//     0.4 s at the least), or an unanswered initiation and its first
//     retry when no data flows. An endpoint in use that has heard nothing
//     for ProbeInterval (it only receives, or only sends keepalives) is
//     probed, at most once per ProbeInterval, and escapes when that probe
//     is unanswered. The device rebinds to a new random port
//     (listen_port=0, from the watcher goroutine, never from a packet
//     goroutine: the rebind waits for the receive goroutines), the peers at
//     that endpoint get their keypairs expired (which also lifts upstream's
//     5 s limit) and a new initiation, and other peers in use are nudged
//     (6. below).
//  4. A path whose last doubt was false (within 2 minutes) is lossy: a
//     swallowed probe is not forced (keypairs expired) but waits for
//     upstream's 5 s window, as stalled data would make a lost probe
//     look like death.
//  5. After an escape one more unanswered initiation escapes again, until
//     the endpoint is heard from (a silent spell). The first six escapes
//     of a spell follow each other as soon as the new flow's initiation
//     is lost (the handshake wait); then one per 5 s (upstream's
//     REKEY_TIMEOUT, the pace of its own handshake retries) until the
//     spell is 90 s old (REKEY_ATTEMPT_TIME), then one per MaxBackoff
//     (1 min). Behind a balancer that hashes each new flow to one dead
//     backend of two, k escapes all land on it with probability 2^-k:
//     10 escapes in the first 30 s leave about 1 client in 1000 stuck
//     that long, 23 by 90 s leave none worth counting. A server that is
//     simply down costs 6 rebinds in the first seconds, then one per 5 s
//     (beside an initiation upstream would send anyway) and one per
//     minute after 90 s.
//  6. A rebind moves every flow, so each escape nudges the other peers in
//     use (anything heard, or data or a handshake sent, within 2 minutes):
//     a keepalive, which a plain server follows to the new port at once,
//     and, at most once per 5 s across the device, an initiation, so a
//     balancer in front of them re-routes them too: at most one handshake
//     per 5 s for each other peer, one per escape once a spell is past
//     90 s.
//
// Flow escape is off when a fixed listen_port is configured (a server: its
// port is its address), and can be turned off by Config.FlowEscapeOff or
// the UAPI key wghooks_flow_escape=off.
//
// Files: flowescape.go the stamps and hooks; watcher.go the sampling
// goroutine and the actions; flowwatch.go the decisions; config.go the
// settings.
package flowescape
