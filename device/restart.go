package device

import "sync/atomic"

// RestartConfig configures recovery across restarts (startup broadcast,
// drain, state file, stale-session wake, dead-peer detection).
type RestartConfig struct{}

// restart is the restart-recovery feature.
type restart struct {
	noFeature
	d        *Device
	draining atomic.Bool
}

func newRestart(d *Device) *restart { return &restart{d: d} }

// Draining reports whether the device has been drained and is waiting to
// be replaced (readiness probes answer 503).
func (d *Device) Draining() bool { return d.restart.draining.Load() }
