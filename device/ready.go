package device

import (
	"strconv"
	"sync/atomic"

	"github.com/wghooks/wghooks/uapi"
)

// readiness is what health checks read: whether the device can answer a
// handshake, and whether it is being drained for a planned restart.
type readiness struct {
	configured atomic.Bool // holds a private key set by a transaction that succeeded
	draining   atomic.Bool // set by the restart feature's drain
}

// Configured reports whether the device holds a private key, set by a
// configuration transaction that succeeded. Until then it cannot answer a
// handshake, so readiness probes report it not ready.
func (d *Device) Configured() bool { return d.ready.configured.Load() }

// Draining reports whether the device has been drained and is waiting to
// be replaced (readiness probes answer 503).
func (d *Device) Draining() bool { return d.ready.draining.Load() }

// readinessLines are the core's lines in a get reply.
func (d *Device) readinessLines() []uapi.Line {
	return []uapi.Line{{Key: "wghooks_draining", Value: strconv.FormatBool(d.Draining())}}
}

// noteStandardSet is called after upstream applied a set transaction's
// standard keys without error. It runs on the configuring goroutine.
func (d *Device) noteStandardSet(set *uapi.Set) {
	for _, l := range set.Device {
		switch l.Key {
		case "private_key":
			k, err := uapi.ParseKey(l.Value)
			d.ready.configured.Store(err == nil && k != [32]byte{})
		}
	}
}
