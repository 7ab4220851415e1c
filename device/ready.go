package device

import (
	"strconv"

	"wghooks/uapi"
)

// Configured reports whether the device holds a private key, set by a
// configuration transaction that succeeded. Until then it cannot answer a
// handshake, so readiness probes report it not ready.
func (d *Device) Configured() bool { return d.flowEscape.configured.Load() }

// noteStandardSet is called after upstream applied a set transaction's
// standard keys without error. It runs on the configuring goroutine.
func (d *Device) noteStandardSet(set *uapi.Set) {
	for _, l := range set.Device {
		switch l.Key {
		case "private_key":
			k, err := uapi.ParseKey(l.Value)
			d.flowEscape.configured.Store(err == nil && k != [32]byte{})
		case "listen_port":
			port, err := strconv.ParseUint(l.Value, 10, 16)
			if err == nil {
				d.flowEscape.setListenPort(uint16(port))
			}
		}
	}
}
