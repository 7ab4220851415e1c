// Package hooks holds wghooks' hook contracts: the callbacks and interfaces
// through which an embedder or a built-in provider joins the device's
// lifecycle, and the event values they receive. It imports only the
// standard library, so a provider can be written without pulling in the
// WireGuard engine.
//
// Every hook documents: what nil means (always "do nothing"), which
// goroutine calls it, whether it may block, and which arguments are
// borrowed. No hook may call back into the device that called it.
package hooks
