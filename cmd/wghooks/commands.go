package main

import (
	"fmt"
	"io"

	"github.com/wghooks/wghooks/ipc"
	"github.com/wghooks/wghooks/uapi"
)

// A command is one word of the CLI: `wghooks [-socket-dir DIR] NAME ARGS`.
type command struct {
	name  string
	usage string // its lines in the usage message, starting with name
	run   func(dir string, args []string, out io.Writer) error
}

// commands is every command, in one place and sorted by name: the usage
// message lists them in this order (TestCommandTable keeps it sorted).
var commands = []command{
	// broadcast, drain, save-state and undrain: cmd_restart.go, around a
	// planned restart. endpoint, endpoints, reset-source and setconf:
	// cmd_endpoints.go. peers: cmd_peers.go, the store of just-in-time peers.
	{"broadcast", "broadcast IFACE    send a handshake initiation to every peer with a known endpoint", restartSetCmd("wghooks_broadcast=true", "handshake initiations sent")},
	{"drain", "drain IFACE        expire every session, save the state file, report draining", restartSetCmd("drain=true", "drained")},
	{"endpoint", "endpoint IFACE PEER HOST:PORT|-   keep PEER's endpoint as a hostname (re-resolved, failover between its addresses); - removes it", runEndpoint},
	{"endpoints", "endpoints IFACE   hostname endpoints: address in use, candidates, last error", runEndpoints},
	{"get", "get IFACE          the raw UAPI get reply", runGet},
	{"keys", "keys               the UAPI extension keys this build understands", runKeys},
	{"peers", `peers [-db PATH|URL] add IFACE KEY [allowed-ips IPS] [preshared-key FILE] [persistent-keepalive SECS] [endpoint IP:PORT] [comment TEXT] [enabled BOOL]
  peers [-db PATH|URL] remove IFACE KEY      remove from the store and from the running daemon
  peers [-db PATH|URL] list IFACE            stored peers, and which are installed now
  peers [-db PATH|URL] import IFACE FILE|-   add the [Peer]s of ` + "`wg showconf`" + ` output
  peers -db URL migrate                      create or upgrade a PostgreSQL store's schema
      (store: -db, else $WGHOOKS_PEER_DB, else /var/lib/wghooks/IFACE.db; a postgres:// URL
      is the fleet's PostgreSQL store, where a change reaches every gateway)`, runPeers},
	{"reset-source", "reset-source IFACE [PEER]   forget the cached source address of PEER (default: all peers)", runResetSource},
	{"save-state", "save-state IFACE   write the state file now", restartSetCmd("wghooks_save_state=true", "state file written")},
	{"setconf", "setconf IFACE FILE   apply a wg-quick style file like `wg setconf`, keeping hostname endpoints", runSetconf},
	{"status", "status IFACE       peers, endpoints, last handshakes, wghooks' extension state", runStatus},
	{"undrain", "undrain IFACE      stop reporting draining (restart called off)", restartSetCmd("drain=false", "no longer draining")},
}

// findCommand returns the command called name, or nil.
func findCommand(name string) *command {
	for i := range commands {
		if commands[i].name == name {
			return &commands[i]
		}
	}
	return nil
}

func oneIface(args []string) (string, error) {
	if len(args) != 1 {
		return "", fmt.Errorf("expected one interface name, got %d arguments", len(args))
	}
	return args[0], nil
}

// getLines returns a daemon's get reply.
func getLines(dir, iface string) ([]uapi.Line, error) {
	c, err := ipc.Dial(dir, iface)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	return c.Get()
}

// getIface reads the one interface name in args and its get reply.
func getIface(dir string, args []string) (string, []uapi.Line, error) {
	iface, err := oneIface(args)
	if err != nil {
		return "", nil, err
	}
	lines, err := getLines(dir, iface)
	return iface, lines, err
}

// setLines sends one set transaction to a daemon.
func setLines(dir, iface string, lines ...string) error {
	c, err := ipc.Dial(dir, iface)
	if err != nil {
		return err
	}
	defer c.Close()
	return c.Set(lines...)
}
