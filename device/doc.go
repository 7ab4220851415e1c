// Package device is wghooks' WireGuard device: it owns an unmodified
// upstream device built on wghooks' bind and TUN wrappers, keeps its own
// view of the configured peers, and runs the lifecycle around the upstream
// engine (coming up, configuration over the UAPI text protocol and its
// extension keys, closing).
//
// Lock order: Device.lifecycle, then Device.peers. Neither is held while
// calling into the upstream device's IPC methods except lifecycle.
package device
