package main

import (
	"fmt"
	"time"

	"github.com/wghooks/wghooks/cmd/wireguard-go/internal/settings"
	"github.com/wghooks/wghooks/device"
	"github.com/wghooks/wghooks/hooks/dnsresolver"
	"github.com/wghooks/wghooks/hooks/pgstore"
	"github.com/wghooks/wghooks/hooks/sqlstore"
	"github.com/wghooks/wghooks/ops"
)

// daemon is what the settings fill: the device's configuration and the
// daemon's own settings.
type daemon struct {
	cfg device.Config

	// httpAddr is the operations endpoint's address; "" is off.
	httpAddr string
	// metricsPeers caps its per-peer series (0: ops' default, < 0: none);
	// metricsTokenFile holds the token /metrics requires ("": none).
	metricsPeers     int
	metricsTokenFile string

	// The peer provider's settings; buildProvider combines them.
	peerURL, peerAddrURL, peerToken, peerTokenFile string
	peerAllowPlaintext                             bool
	peerDB                                         settings.Value // path or off
	// store is the daemon's SQLite store, when it is the provider.
	store *daemonStore
	// pg is the fleet's PostgreSQL store, when it is the provider.
	pg *daemonPG
}

// settingsTable declares every WGHOOKS_* setting once. A setting's file key
// is its name without "WGHOOKS_", in lower case (WGHOOKS_STATE_FILE is
// state_file in /etc/wghooks/IFACE.conf). README.md's list is generated
// from it (TestREADMESettings).
var settingsTable = &settings.Table[daemon]{
	Prefix:  "WGHOOKS_",
	FileDir: envConfigDir,
	Settings: []settings.Setting[daemon]{
		{Name: envConfigDir, Kind: settings.Path, Default: "/etc/wghooks", EnvOnly: true,
			Doc: "directory of the settings file IFACE.conf (a missing file is fine)"},

		// Recovery across restarts (device/restart).
		{Name: "WGHOOKS_BROADCAST", Kind: settings.Bool, Default: "on",
			Doc: "send every peer with a known endpoint a handshake initiation when the interface comes up, or at the first `wg setconf` if it came up before",
			Set: func(d *daemon, v settings.Value) error {
				d.cfg.Restart.Broadcast = device.BroadcastAtFirstPeers
				if !v.Bool {
					d.cfg.Restart.Broadcast = device.BroadcastOff
				}
				return nil
			}},
		{Name: "WGHOOKS_STATE_FILE", Kind: settings.Path, Off: true, Default: device.DefaultStateDir + "/IFACE.json",
			Doc: "learned endpoints and last handshakes, saved on drain, on exit and periodically, applied at the next start",
			Set: func(d *daemon, v settings.Value) error {
				if !v.Off {
					d.cfg.Restart.StateFile = v.Text
				}
				return nil
			}},
		{Name: "WGHOOKS_STATE_INTERVAL", Kind: settings.Duration, Off: true, Builtin: true, Default: "30s", Floor: "100ms", Ceiling: "24h",
			Doc: "how often the state file is rewritten while up (off: only on drain and exit)",
			Set: func(d *daemon, v settings.Value) error { d.cfg.Restart.StateInterval = durOr(v, -1); return nil }},
		{Name: "WGHOOKS_STATE_MAX_AGE", Kind: settings.Duration, Builtin: true, Default: "24h", Floor: "1s", Ceiling: "8760h",
			Doc: "a state file older than this is stale and ignored",
			Set: func(d *daemon, v settings.Value) error { d.cfg.Restart.StateMaxAge = v.Dur; return nil }},
		{Name: "WGHOOKS_STALE_WAKE", Kind: settings.Bool, Builtin: true, Default: "on",
			Doc: "handshake at once when a known peer sends data on a session from before the restart",
			Set: func(d *daemon, v settings.Value) error { d.cfg.Restart.NoStaleWake = !v.Bool; return nil }},
		{Name: "WGHOOKS_DEAD_PEER_TIMEOUT", Kind: settings.Duration, Off: true, Builtin: true, Default: "off", Floor: "100ms", Ceiling: "1h",
			Doc: "client side: a peer sent to and silent this long gets a handshake now",
			Set: func(d *daemon, v settings.Value) error { d.cfg.Restart.DeadPeerTimeout = durOr(v, 0); return nil }},
		// State handed across machines (device/restart/fleet.go), with a
		// peer store shared by a fleet (hooks.StateStore).
		{Name: "WGHOOKS_STATE_STORE_INTERVAL", Kind: settings.Duration, Off: true, Builtin: true, Default: "10s", Floor: "100ms", Ceiling: "24h",
			Doc: "how often learned endpoints and last handshakes go to the peer store, for a gateway that takes over (off: only on drain and exit)",
			Set: func(d *daemon, v settings.Value) error { d.cfg.Restart.StoreInterval = durOr(v, -1); return nil }},
		{Name: "WGHOOKS_TAKEOVER", Kind: settings.Bool, Builtin: true, Default: "off",
			Doc: "a start without a usable state file (none, older than WGHOOKS_TAKEOVER_WINDOW, or for another key) sends one initiation to each peer the peer store saw active with this gateway's key within WGHOOKS_TAKEOVER_WINDOW, at its last endpoint: on only for a gateway that took over the address its clients use (a moved IP, DNS now naming it), never behind a UDP load balancer",
			Set: func(d *daemon, v settings.Value) error { d.cfg.Restart.Takeover = v.Bool; return nil }},
		{Name: "WGHOOKS_TAKEOVER_WINDOW", Kind: settings.Duration, Builtin: true, Default: "5m", Floor: "1s", Ceiling: "24h",
			Doc: "how recent a peer's last handshake must be for a takeover to reach it",
			Set: func(d *daemon, v settings.Value) error { d.cfg.Restart.TakeoverWindow = v.Dur; return nil }},

		// Endpoints that heal (device/endpoints).
		{Name: "WGHOOKS_ENDPOINTS_CONFIG", Kind: settings.Path, Off: true, Default: "/etc/wireguard/IFACE.conf",
			Doc: "wg-quick file whose hostname Endpoints the device keeps as names (the default may be missing)",
			Set: applyEndpointsConfig},
		{Name: "WGHOOKS_DNS", Kind: settings.AddrPorts, Port: 53,
			Doc: "DNS servers for hostname endpoints (default: those of /etc/resolv.conf)",
			Set: func(d *daemon, v settings.Value) error {
				d.cfg.Endpoints.Resolver = &dnsresolver.Resolver{Servers: v.Addrs}
				return nil
			}},
		{Name: "WGHOOKS_ENDPOINT_MIN_TTL", Kind: settings.Duration, Builtin: true, Default: "10s", Floor: "100ms", Ceiling: "24h",
			Doc: "floor of the re-resolution interval",
			Set: func(d *daemon, v settings.Value) error { d.cfg.Endpoints.MinTTL = v.Dur; return nil }},
		{Name: "WGHOOKS_ENDPOINT_MAX_TTL", Kind: settings.Duration, Builtin: true, Default: "5m", Floor: "100ms", Ceiling: "24h",
			Doc: "ceiling of the re-resolution interval",
			Set: func(d *daemon, v settings.Value) error { d.cfg.Endpoints.MaxTTL = v.Dur; return nil }},
		{Name: "WGHOOKS_FAILBACK", Kind: settings.Duration, Builtin: true, Default: "30s", Floor: "100ms", Ceiling: "24h",
			Doc: "how often a peer that left IPv6 tries it again",
			Set: func(d *daemon, v settings.Value) error { d.cfg.Endpoints.FailbackInterval = v.Dur; return nil }},
		{Name: "WGHOOKS_ROUTE_WATCH", Kind: settings.Bool, Builtin: true, Default: "on",
			Doc: "reset cached source addresses when routes, addresses or links change",
			Set: func(d *daemon, v settings.Value) error { d.cfg.Endpoints.NoRouteWatch = !v.Bool; return nil }},

		// Just-in-time peers (device/jit); buildProvider
		// combines the provider's settings.
		{Name: sqlstore.EnvPath, Kind: settings.Path, Off: true, Default: sqlstore.DefaultDir + "/IFACE.db",
			Doc:    "the peer store: a SQLite file (the default is used once `wghooks peers add` creates it), or a postgres:// URL a fleet shares (see Fleet on PostgreSQL); off: no just-in-time peers",
			Redact: pgstore.Redact,
			Set: func(d *daemon, v settings.Value) error {
				if !v.Off && pgstore.IsURL(v.Text) {
					if _, err := pgstore.ParseURL(v.Text); err != nil {
						return err
					}
				}
				d.peerDB = v
				return nil
			}},
		{Name: "WGHOOKS_PEER_URL", Kind: settings.URL,
			Doc: "ask a control plane over HTTP instead (GET URL/KEY, see hooks/httpprovider)",
			Set: func(d *daemon, v settings.Value) error { d.peerURL = v.Text; return nil }},
		{Name: "WGHOOKS_PEER_ADDR_URL", Kind: settings.URL,
			Doc: "the control plane's by-address lookup, with {addr} (for WGHOOKS_JIT_OUTBOUND)",
			Set: func(d *daemon, v settings.Value) error { d.peerAddrURL = v.Text; return nil }},
		{Name: "WGHOOKS_PEER_ALLOW_PLAINTEXT", Kind: settings.Bool, Default: "off",
			Doc: "allow an http:// WGHOOKS_PEER_URL or WGHOOKS_PEER_ADDR_URL to a host that is not loopback (the token and preshared keys then travel in clear)",
			Set: func(d *daemon, v settings.Value) error { d.peerAllowPlaintext = v.Bool; return nil }},
		{Name: "WGHOOKS_PEER_TOKEN", Kind: settings.Secret,
			Doc: "the control plane's bearer token (prefer WGHOOKS_PEER_TOKEN_FILE)",
			Set: func(d *daemon, v settings.Value) error { d.peerToken = v.Text; return nil }},
		{Name: "WGHOOKS_PEER_TOKEN_FILE", Kind: settings.Path,
			Doc: "file holding the bearer token",
			Set: func(d *daemon, v settings.Value) error { d.peerTokenFile = v.Text; return nil }},
		{Name: "WGHOOKS_JIT_IDLE", Kind: settings.Duration, Off: true, Builtin: true, Default: "10m", Floor: "1s", Ceiling: "8760h",
			Doc: "evict just-in-time peers idle this long (off: never)",
			Set: func(d *daemon, v settings.Value) error { d.cfg.JIT.IdleTimeout = durOr(v, -1); return nil }},
		{Name: "WGHOOKS_JIT_MAX_PEERS", Kind: settings.Int, Builtin: true, Default: "16384", Floor: "1", Ceiling: "10000000",
			Doc: "cap on installed just-in-time peers",
			Set: func(d *daemon, v settings.Value) error { d.cfg.JIT.MaxPeers = v.Int; return nil }},
		{Name: "WGHOOKS_JIT_LOOKUP_RATE", Kind: settings.Int, Off: true, Builtin: true, Default: "200", Floor: "1", Ceiling: "1000000",
			Doc: "initiations from new source addresses decoded and looked up per second, all sources together (off: no limit)",
			Set: func(d *daemon, v settings.Value) error { d.cfg.JIT.MaxLookupRate = intOr(v, -1); return nil }},
		{Name: "WGHOOKS_JIT_REVALIDATE", Kind: settings.Duration, Off: true, Builtin: true, Default: "5m", Floor: "1s", Ceiling: "8760h",
			Doc: "re-ask the provider about installed peers at this interval (off: never)",
			Set: func(d *daemon, v settings.Value) error { d.cfg.JIT.RevalidateInterval = durOr(v, -1); return nil }},
		{Name: "WGHOOKS_JIT_NEGATIVE_TTL", Kind: settings.Duration, Builtin: true, Default: "1m", Floor: "10ms", Ceiling: "24h",
			Doc: "refuse a key the provider called unknown this long",
			Set: func(d *daemon, v settings.Value) error { d.cfg.JIT.NegativeTTL = v.Dur; return nil }},
		{Name: "WGHOOKS_JIT_LOOKUP_TIMEOUT", Kind: settings.Duration, Builtin: true, Default: "3s", Floor: "10ms", Ceiling: "10m",
			Doc: "bound on one provider lookup",
			Set: func(d *daemon, v settings.Value) error { d.cfg.JIT.LookupTimeout = v.Dur; return nil }},
		{Name: "WGHOOKS_JIT_RESTORE_DEADLINE", Kind: settings.Duration, Builtin: true, Default: "2m", Floor: "1s", Ceiling: "24h",
			Doc: "bound on reinstalling, after a restart, the just-in-time peers of the state file",
			Set: func(d *daemon, v settings.Value) error { d.cfg.JIT.RestoreDeadline = v.Dur; return nil }},
		{Name: "WGHOOKS_JIT_OUTBOUND", Kind: settings.Bool, Builtin: true, Default: "off",
			Doc: "a packet to the address of a peer not installed installs it from the provider, so the gateway can reach a client first",
			Set: func(d *daemon, v settings.Value) error { d.cfg.JIT.Outbound = v.Bool; return nil }},

		// Behind a UDP load balancer (device/flowescape, ops/).
		{Name: "WGHOOKS_HTTP", Kind: settings.ListenAddr, Listen: ops.ListenAddr, Off: true, Default: "off",
			Doc: "serve /healthz, /readyz and /metrics here (a bare port listens on 127.0.0.1)",
			Set: func(d *daemon, v settings.Value) error {
				if !v.Off {
					d.httpAddr = v.Text
				}
				return nil
			}},
		{Name: "WGHOOKS_METRICS_PEERS", Kind: settings.Int, Off: true, Builtin: true, Default: "10000", Floor: "1", Ceiling: "1000000",
			Doc: "cap on the peers with per-peer series (wireguard_*) on /metrics; past it wghooks_peer_series_omitted counts the rest (off: none)",
			Set: func(d *daemon, v settings.Value) error { d.metricsPeers = intOr(v, -1); return nil }},
		{Name: "WGHOOKS_METRICS_TOKEN_FILE", Kind: settings.Path,
			Doc: "file holding the bearer token /metrics then requires (/healthz and /readyz stay open)",
			Set: func(d *daemon, v settings.Value) error { d.metricsTokenFile = v.Text; return nil }},
		{Name: "WGHOOKS_FLOW_ESCAPE", Kind: settings.Enum, Values: []string{"auto", "on", "off"}, Builtin: true, Default: "auto",
			Doc: "move to a new source port when a peer stops answering (auto and on: only while the listen port is random)",
			Set: func(d *daemon, v settings.Value) error { d.cfg.HA.FlowEscapeOff = v.Off; return nil }},
		{Name: "WGHOOKS_FLOW_ESCAPE_SILENCE", Kind: settings.Duration, Builtin: true, Default: "1s", Floor: "10ms", Ceiling: "1m",
			Doc: "cap on how long data may go unanswered before a probe handshake (the measured round-trip timeout when shorter)",
			Set: func(d *daemon, v settings.Value) error { d.cfg.HA.Silence = v.Dur; return nil }},
		{Name: "WGHOOKS_FLOW_ESCAPE_HANDSHAKE_TIMEOUT", Kind: settings.Duration, Builtin: true, Default: "1s", Floor: "10ms", Ceiling: "1m",
			Doc: "cap on how long an initiation may go unanswered before it is lost (twice the measured round-trip timeout when shorter)",
			Set: func(d *daemon, v settings.Value) error { d.cfg.HA.HandshakeTimeout = v.Dur; return nil }},
		{Name: "WGHOOKS_PROBE_INTERVAL", Kind: settings.Duration, Off: true, Builtin: true, Default: "15s", Floor: "1s", Ceiling: "24h",
			Doc: "a peer in use that only receives or only sends keepalives is probed with a handshake after hearing nothing this long, at most once per interval (hostname endpoints, flow escape; off: never)",
			Set: func(d *daemon, v settings.Value) error {
				d.cfg.Endpoints.ProbeInterval = durOr(v, -1)
				d.cfg.HA.ProbeInterval = durOr(v, -1)
				return nil
			}},

		// The handshake-flood guard (device/guard).
		{Name: "WGHOOKS_GUARD_RATE", Kind: settings.Int, Off: true, Builtin: true, Default: "256", Floor: "1", Ceiling: "1000000",
			Doc: "handshake initiations per second from new source addresses taken without a cookie (off: no guard)",
			Set: func(d *daemon, v settings.Value) error { d.cfg.Guard.Rate = intOr(v, -1); return nil }},
	},
}

// envConfigDir names the directory of the settings file; only the
// environment can set it, so tests and packagers can move the file.
const envConfigDir = "WGHOOKS_CONFIG_DIR"

// durOr is a duration setting's value, or ifOff when it is off.
func durOr(v settings.Value, ifOff time.Duration) time.Duration {
	if v.Off {
		return ifOff
	}
	return v.Dur
}

// intOr is v's number, or ifOff when v is off.
func intOr(v settings.Value, ifOff int) int {
	if v.Off {
		return ifOff
	}
	return v.Int
}

// readSettings reads the settings of interface iface from environ (as
// os.Environ returns it) and its settings file, and applies them.
func readSettings(iface string, environ []string) (*daemon, *settings.Values[daemon], error) {
	vs, err := settingsTable.Read(iface, environ)
	if err != nil {
		return nil, nil, fmt.Errorf("failed to read settings: %w", err)
	}
	d := &daemon{cfg: device.Config{Name: iface}}
	if err := vs.Apply(d); err != nil {
		return nil, nil, fmt.Errorf("failed to read settings: %w", err)
	}
	if err := d.buildProvider(); err != nil {
		return nil, nil, fmt.Errorf("failed to read settings: %w", err)
	}
	return d, vs, nil
}
