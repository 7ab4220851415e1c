// Package testkit is the one test rig of wghooks, shared by the tests of
// every package, the cross-package tests in tests/, their benchmarks and
// the demo. Only tests and the demo import it.
//
// By concern:
//
//   - keys.go: WireGuard key pairs and UAPI set text (Keypair, UAPI).
//   - node.go: one end of an in-process tunnel on a netstack TUN and
//     loopback UDP (Node), running wghooks (StartWghooks, NewWghooks) or
//     plain upstream (StartUpstream, NewUpstream), or bare for a rig that
//     builds its own device (MakeNode); peering (PeerConf, AddPeer); reading
//     a get reply (ReadListenPort, ListenPort, PeerValueOf, PeerValue); a
//     free UDP port (FreeUDPPort).
//   - traffic.go: traffic through a tunnel: one ICMP echo (Node.Ping,
//     PingUntil), UDP echo (Node.ServeEcho, Node.Echo), HTTP
//     (Node.ServeHTTP, Node.Get).
//   - pinger.go: numbered echoes, counting losses and finding when traffic
//     flowed again (StartPinger, NewPinger).
//   - eventually.go: poll a condition with a deadline (Eventually,
//     EventuallyNil, Poll); tests never sleep and then assert.
//   - log.go: a thread-safe log capture, also an io.Writer for a
//     process's output, that can wait for a line (Log).
//   - bind.go: a conn.Bind wrapper counting handshake messages
//     (CountingBind).
//   - deafbind.go: a conn.Bind wrapper that, once cut, drops everything
//     both ways with its socket open, as a crashed host would (DeafBind).
//   - require.go: a real part that is missing skips the test, or fails it
//     when CI=true (Missing).
//   - srcbind.go: a conn.Bind on one loopback address, so each of many
//     clients comes from its own (SourceBind).
//   - leak.go: the goroutine-leak check at Cleanup (CheckLeaks).
//   - uapi.go: a device with its UAPI served on a socket, and raw protocol
//     text spoken to it (Device, ServeUAPI, Raw, RoundTrip, Reply).
//   - countingstore.go: a peer store counting lookups one by one and in
//     batches (CountingStore).
//   - statestore.go: the hooks.StateStore contract, the same checks for
//     every store (CheckStateStore).
//
// Constructors named New* take a testing.TB, fail the test on error and
// close what they start at Cleanup; those named Start* return an error and
// leave closing to the caller (the demo uses them).
package testkit
