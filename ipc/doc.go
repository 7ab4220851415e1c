// Package ipc serves WireGuard's UAPI socket (/var/run/wireguard/IFACE.sock;
// on Windows upstream's named pipe) for a wghooks device: the same text protocol and errno replies as
// upstream, so `wg`, `wg-quick` and wgctrl work unchanged, with wghooks'
// extension keys handled by the device. Unlike upstream, a failed
// transaction is read to its end and the connection stays usable.
package ipc
