// Package tun holds helpers around upstream TUN devices: a wrapper that lets
// wghooks decide when the device comes up, and a netstack constructor for
// in-process tunnels that need no root.
package tun
