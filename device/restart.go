package device

import "github.com/wghooks/wghooks/device/restart"

// The restart feature (device/restart) is reached through these methods,
// so the library's API is the same as when it lived here.

// RestartActions is the typed form of the restart feature's UAPI keys.
// See restart.Actions.
type RestartActions = restart.Actions

// Broadcast sends a handshake initiation now to every peer whose endpoint
// is known, and returns how many peers it asked. See
// restart.Restart.Broadcast.
func (d *Device) Broadcast() (int, error) { return d.restart.Broadcast() }

// DrainPeers prepares the device to be replaced: every peer's keypairs
// expire, the device reports draining and the state file is written. See
// restart.Restart.Drain.
func (d *Device) DrainPeers() error { return d.restart.Drain() }

// Undrain stops reporting draining, when a planned restart is called off.
func (d *Device) Undrain() { d.restart.Undrain() }

// SaveState writes the state file now. Without a StateFile it does
// nothing. See restart.Restart.SaveState.
func (d *Device) SaveState() error { return d.restart.SaveState() }

// ConfigureRestart runs the requested actions: undrain, drain, save
// state, broadcast. It runs all of them and returns their errors joined.
func (d *Device) ConfigureRestart(a RestartActions) error { return d.restart.Configure(a) }

// SaveFleetState writes the learned endpoints and last handshakes to the
// fleet's store now, when the provider keeps one (hooks.StateStore). See
// restart.Restart.SaveFleetState.
func (d *Device) SaveFleetState() error { return d.restart.SaveFleetState() }
