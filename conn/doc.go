// Package conn wraps any upstream wgconn.Bind so wghooks can see, hold and
// re-inject datagrams before the upstream device does, and observe what it
// sends.
//
// The wrapper is on the per-packet path of every tunnel, so its default work
// is one byte compare per datagram; everything else is opt-in through the
// hooks in Hooks.
package conn
