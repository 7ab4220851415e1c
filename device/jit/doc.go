// Package jit is wghooks' just-in-time peers: a peer the device does not
// hold is installed when its first handshake initiation arrives (or, with
// Config.Outbound, when a packet goes to an address only it holds), from
// a hooks.Provider, and answered without a client retransmit; idle ones
// are evicted, all are revalidated with the provider (at once for the
// keys a provider that pushes changes names), and across a
// restart the feature's section of the state file brings them back.
//
// The feature sees the device only through feature.Host. Its files, each
// opening with its flow:
//
//	provision.go     the flow: decode, hold, answer once installed
//	config.go        the settings and their defaults
//	receive.go       the receive path: admission, known sources watched
//	lookup.go        provider calls: timed, checked, the negative cache
//	install.go       installs through the host, the just-in-time mark
//	uapi.go          transactions followed, the UAPI keys
//	batch.go         mass arrival: waiting misses asked and installed together
//	budget.go        the lookup budget over all sources
//	faillog.go       repeated failure lines, one summary per interval
//	evict.go         idle eviction, the cap, revalidation
//	watch.go         changes pushed by a hooks.ChangeNotifier, revalidated at once
//	outbound.go      installs for outbound packets (Config.Outbound)
//	staticroutes.go  the operator's peers' routes, never handed out
//	restore.go       the state file section and the restore at start-up
//
// A peer is just in time when this feature installed it (its own
// Host.Configure calls, origin "jit") or the operator marked it so
// (wghooks_jit=true); a transaction of the operator that configures it
// without that key makes it static. Changes of other origins leave it as
// it is.
package jit
