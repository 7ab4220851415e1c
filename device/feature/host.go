package feature

import (
	wgdevice "golang.zx2c4.com/wireguard/device"

	"github.com/wghooks/wghooks/conn"
	"github.com/wghooks/wghooks/tun"
)

// Logger is where a feature's log lines go. Name peers with ShortKey.
type Logger interface {
	Verbosef(format string, args ...any)
	Errorf(format string, args ...any)
}

// Host is the device core as a feature sees it. Every method is safe to
// call from any goroutine; none may be called from a receive or send hook
// except Counters, HasPeer, Identity, Sources, Upstream().IsUnderLoad and
// the Logger (the hooks' contract: no blocking, no calls into the device).
type Host interface {
	Logger

	// Counters are the device's event counters; features add to theirs.
	Counters() *Counters

	// HasPeer, PeerKeys and PeerCount read the core's own view of the
	// configured peers (never upstream's IpcGet).
	HasPeer(pk Key) bool
	PeerKeys() []Key
	PeerCount() int

	// View reads upstream's runtime state (endpoints, handshakes, byte
	// counters): ~30 ms at 10k peers, so on events and timers only.
	View() (View, error)

	// Upstream is the upstream device, for its exported per-peer methods
	// (LookupPeer, SendHandshakeInitiation, ExpireCurrentKeypairs, ...)
	// and IsUnderLoad. Configuration goes through Configure, never
	// through upstream's IpcSet.
	Upstream() *wgdevice.Device

	// Bind is the wrapping bind: Inject, SendInner, Port, ParseEndpoint.
	Bind() *conn.Bind

	// TUN is the TUN wrapper: read filters and injected reads.
	TUN() *tun.UpDelay

	// Identity is the device's static identity; nil without a private
	// key. It changes when a transaction sets a new key.
	Identity() *Identity

	// Sources are the UDP addresses the device recently exchanged
	// handshake messages with.
	Sources() *Sources

	// Configure applies a typed configuration change through the same
	// path as a UAPI set transaction; every feature's Configured then sees
	// it with Origin origin (the caller's feature name).
	Configure(origin string, c Config) error

	// IsUp reports whether the device is up; Configured whether it holds
	// a private key set by a transaction that succeeded.
	IsUp() bool
	Configured() bool

	// SetDraining sets what readiness reports while a planned restart is
	// under way, and returns the previous value.
	SetDraining(on bool) (was bool)

	// Go runs fn on a goroutine owned by the device: Close waits for it.
	// fn must return once Done is closed.
	Go(fn func())

	// Done is closed when Close begins.
	Done() <-chan struct{}
}
