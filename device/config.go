package device

import (
	wgconn "golang.zx2c4.com/wireguard/conn"

	"github.com/wghooks/wghooks/device/endpoints"
	"github.com/wghooks/wghooks/device/flowescape"
	"github.com/wghooks/wghooks/device/guard"
	"github.com/wghooks/wghooks/device/jit"
	"github.com/wghooks/wghooks/device/restart"
	"github.com/wghooks/wghooks/hooks"
)

// Config configures a Device. The zero value works: real UDP sockets on a
// random port, no logging.
type Config struct {
	// Bind is the UDP transport wghooks wraps. Default: upstream's
	// default bind (kernel UDP sockets).
	Bind wgconn.Bind

	// Verbosef receives debug lines from wghooks and upstream.
	// Default: discarded.
	Verbosef hooks.Logf

	// Errorf receives error lines from wghooks and upstream.
	// Default: discarded.
	Errorf hooks.Logf

	// Name is the interface name used in log lines. Default: the TUN's
	// name, or "wg" when it has none.
	Name string

	// Restart configures recovery across restarts. See RestartConfig.
	Restart RestartConfig

	// Endpoints configures endpoints that heal. See EndpointConfig.
	Endpoints EndpointConfig

	// JIT configures just-in-time peers. See JITConfig.
	JIT JITConfig

	// HA configures behaviour behind UDP load balancers. See HAConfig.
	HA HAConfig

	// Guard configures the handshake-flood guard. See GuardConfig.
	Guard GuardConfig
}

// GuardConfig configures the handshake guard. See guard.Config.
type GuardConfig = guard.Config

// HAConfig configures behaviour behind UDP load balancers. See
// flowescape.Config.
type HAConfig = flowescape.Config

// EndpointConfig configures endpoints that heal. See endpoints.Config.
type EndpointConfig = endpoints.Config

// JITConfig configures just-in-time peers. See jit.Config.
type JITConfig = jit.Config

// RestartConfig configures recovery across restarts. See restart.Config.
type RestartConfig = restart.Config

// BroadcastMode selects when the startup handshake broadcast runs. See
// restart.BroadcastMode.
type BroadcastMode = restart.BroadcastMode

// The broadcast modes; see restart.BroadcastAtUp and the others.
const (
	BroadcastAtUp         = restart.BroadcastAtUp
	BroadcastAtFirstPeers = restart.BroadcastAtFirstPeers
	BroadcastOff          = restart.BroadcastOff
)

// Defaults of RestartConfig; see restart.DefaultStateInterval and the
// others.
const (
	DefaultStateInterval  = restart.DefaultStateInterval
	DefaultStateMaxAge    = restart.DefaultStateMaxAge
	DefaultStateDir       = restart.DefaultStateDir
	DefaultStoreInterval  = restart.DefaultStoreInterval
	DefaultTakeoverWindow = restart.DefaultTakeoverWindow
)
