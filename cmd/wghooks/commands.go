package main

import (
	"encoding/base64"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"wghooks/ipc"
	"wghooks/uapi"
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
	{"peers", `peers [-db PATH] add IFACE KEY [allowed-ips IPS] [preshared-key FILE] [persistent-keepalive SECS] [endpoint IP:PORT] [comment TEXT]
  peers [-db PATH] remove IFACE KEY      remove from the store and from the running daemon
  peers [-db PATH] list IFACE            stored peers, and which are installed now
  peers [-db PATH] import IFACE FILE|-   add the [Peer]s of ` + "`wg showconf`" + ` output
      (store: -db, else $WGHOOKS_PEER_DB, else /var/lib/wghooks/IFACE.db)`, runPeers},
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

func runGet(dir string, args []string, out io.Writer) error {
	_, lines, err := getIface(dir, args)
	if err != nil {
		return err
	}
	for _, l := range lines {
		fmt.Fprintln(out, l)
	}
	return nil
}

// runStatus prints a short human summary: the interface, then one line per
// peer with its endpoint and last handshake.
func runStatus(dir string, args []string, out io.Writer) error {
	iface, lines, err := getIface(dir, args)
	if err != nil {
		return err
	}
	st := summarize(lines)
	fmt.Fprintf(out, "interface %s: listening on port %s, %d peers\n", iface, st.port, len(st.peers))
	for _, e := range st.ext {
		fmt.Fprintf(out, "  %s\n", e)
	}
	for _, p := range st.peers {
		hs := "never"
		if p.handshake > 0 {
			hs = time.Since(time.Unix(p.handshake, 0)).Round(time.Second).String() + " ago"
		}
		ep := p.endpoint
		if ep == "" {
			ep = "(none)"
		}
		fmt.Fprintf(out, "  peer %s  endpoint %s  handshake %s  rx %d B  tx %d B\n", p.key, ep, hs, p.rx, p.tx)
		for _, e := range p.ext {
			fmt.Fprintf(out, "    %s\n", e)
		}
	}
	return nil
}

type peerStatus struct {
	key, endpoint string
	handshake     int64
	rx, tx        int64
	ext           []uapi.Line
}

type status struct {
	port  string
	ext   []uapi.Line // the device's own wghooks_ lines
	peers []*peerStatus
}

func summarize(lines []uapi.Line) status {
	st := status{port: "?"}
	var cur *peerStatus
	for _, l := range lines {
		switch {
		case l.Key == "public_key":
			key := l.Value
			if k, err := uapi.ParseKey(l.Value); err == nil {
				key = base64.StdEncoding.EncodeToString(k[:])
			}
			cur = &peerStatus{key: key}
			st.peers = append(st.peers, cur)
		case cur == nil && l.Key == "listen_port":
			st.port = l.Value
		case cur == nil && strings.HasPrefix(l.Key, "wghooks_"):
			st.ext = append(st.ext, l)
		case cur == nil:
		case l.Key == "endpoint":
			cur.endpoint = l.Value
		case l.Key == "last_handshake_time_sec":
			cur.handshake, _ = strconv.ParseInt(l.Value, 10, 64)
		case l.Key == "rx_bytes":
			cur.rx, _ = strconv.ParseInt(l.Value, 10, 64)
		case l.Key == "tx_bytes":
			cur.tx, _ = strconv.ParseInt(l.Value, 10, 64)
		case strings.HasPrefix(l.Key, "wghooks_"):
			cur.ext = append(cur.ext, l)
		}
	}
	return st
}
