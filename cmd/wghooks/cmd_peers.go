package main

import (
	"context"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/wghooks/wghooks/hooks"
	"github.com/wghooks/wghooks/hooks/pgstore"
	"github.com/wghooks/wghooks/hooks/sqlstore"
	"github.com/wghooks/wghooks/ipc"
	"github.com/wghooks/wghooks/uapi"
)

// The peer store of just-in-time peers: the SQLite file the daemon asks
// when an unknown key handshakes, or the PostgreSQL database a fleet of
// gateways shares (a postgres:// URL; peers_store.go). Changes reach a
// running daemon at once where they must: remove also takes the peer off
// the daemon (revocation), add and import clear the daemon's "unknown"
// memory of the keys. In PostgreSQL they also reach every other gateway,
// through the database's own trigger.
func runPeers(dir string, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("peers", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	dbPath := fs.String("db", "", "peer store path or postgres:// URL")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("failed to parse peers arguments: %w", err)
	}
	args = fs.Args()
	if len(args) >= 1 && args[0] == "migrate" {
		return runPeersMigrate(*dbPath, args[1:], out)
	}
	if len(args) < 2 {
		return fmt.Errorf("usage: wghooks peers [-db PATH|URL] add|remove|list|import IFACE ... | migrate")
	}
	sub, iface, rest := args[0], args[1], args[2:]
	path := *dbPath
	if path == "" {
		path = sqlstore.PathFor(iface, os.Getenv)
	}
	p := &peersCmd{dir: dir, iface: iface, path: path, out: out, pg: pgstore.IsURL(path)}
	switch sub {
	case "add":
		return p.add(rest)
	case "remove", "rm", "del":
		return p.remove(rest)
	case "list", "ls":
		return p.list(rest)
	case "import":
		return p.importConf(rest)
	}
	return fmt.Errorf("unknown peers command %q: want add, remove, list or import", sub)
}

type peersCmd struct {
	dir, iface, path string
	pg               bool // path is a PostgreSQL URL
	out              io.Writer
	// maxSet bounds the bytes of one transaction tellEach sends; 0 is
	// maxSetBytes.
	maxSet int
}

// maxSetBytes bounds one transaction of independent lines, far under the
// daemon's uapi.MaxTransaction (64 MiB): an import of 600,000 peers told
// the daemon to forget them in one transaction of over 64 MiB, which it
// refused (errno -71) after the store had them all.
const maxSetBytes = 1 << 20

// open opens the store, creating a SQLite store's directory for commands
// that write.
func (p *peersCmd) open(create bool) (peerStore, error) {
	if p.pg {
		return openPG(p.path)
	}
	if create {
		if i := strings.LastIndexByte(p.path, '/'); i > 0 {
			if err := os.MkdirAll(p.path[:i], 0o700); err != nil {
				return nil, fmt.Errorf("failed to create store directory for %q: %w", p.path, err)
			}
		}
	} else if _, err := os.Stat(p.path); err != nil {
		return nil, fmt.Errorf("failed to open peer store %q: %w", p.path, err)
	}
	s, err := sqlstore.Open(p.path)
	if err != nil {
		return nil, err
	}
	return sqliteStore{s}, nil
}

// tell sends set lines to the running daemon. running is false (and err
// nil) when no daemon serves the interface.
func (p *peersCmd) tell(lines ...string) (running bool, err error) {
	c, err := ipc.Dial(p.dir, p.iface)
	if err != nil {
		return false, nil
	}
	defer c.Close()
	if err := c.Set(lines...); err != nil {
		return true, fmt.Errorf("failed to update %s: %w", p.iface, err)
	}
	return true, nil
}

// tellEach sends lines that do not depend on each other (device-level
// keys such as wghooks_jit_forget) in as many transactions as p.maxSet
// needs, over one connection. running is false (and err nil) when no
// daemon serves the interface.
func (p *peersCmd) tellEach(lines []string) (running bool, err error) {
	c, err := ipc.Dial(p.dir, p.iface)
	if err != nil {
		return false, nil
	}
	defer c.Close()
	limit := p.maxSet
	if limit <= 0 {
		limit = maxSetBytes
	}
	batches := splitLines(lines, limit)
	for i, b := range batches {
		if err := c.Set(b...); err != nil {
			return true, fmt.Errorf("failed to update %s (transaction %d of %d): %w", p.iface, i+1, len(batches), err)
		}
	}
	return true, nil
}

// splitLines cuts lines into runs of at most limit bytes, each line
// counted with its newline; a longer line is a run of its own.
func splitLines(lines []string, limit int) [][]string {
	var out [][]string
	start, size := 0, 0
	for i, l := range lines {
		n := len(l) + 1
		if size+n > limit && i > start {
			out = append(out, lines[start:i])
			start, size = i, 0
		}
		size += n
	}
	if start < len(lines) {
		out = append(out, lines[start:])
	}
	return out
}

func (p *peersCmd) add(args []string) error {
	if len(args) < 1 || len(args)%2 != 1 {
		return fmt.Errorf("usage: wghooks peers add IFACE KEY [allowed-ips IPS] [preshared-key FILE] [persistent-keepalive SECS] [endpoint IP:PORT] [comment TEXT]")
	}
	key, err := hooks.ParsePublicKey(args[0])
	if err != nil {
		return err
	}
	peer := sqlstore.Peer{PeerConfig: hooks.PeerConfig{PublicKey: key}}
	enabled := true
	for i := 1; i+1 < len(args); i += 2 {
		if args[i] == "enabled" {
			if !p.pg {
				return fmt.Errorf("peer option enabled needs a PostgreSQL store (-db postgres://...)")
			}
			b, err := strconv.ParseBool(args[i+1])
			if err != nil {
				return fmt.Errorf("failed to parse enabled %q: want true or false", args[i+1])
			}
			enabled = b
			continue
		}
		if err := setPeerOption(&peer, args[i], args[i+1]); err != nil {
			return err
		}
	}
	s, err := p.open(true)
	if err != nil {
		return err
	}
	defer s.close()
	if err := s.put(context.Background(), []sqlstore.Peer{peer}, !enabled); err != nil {
		return err
	}
	if _, err := p.tell("wghooks_jit_forget=" + key.Hex()); err != nil {
		return err
	}
	fmt.Fprintf(p.out, "%s: stored peer %s\n", p.iface, key)
	return nil
}

func setPeerOption(peer *sqlstore.Peer, name, v string) error {
	switch name {
	case "allowed-ips":
		ips, err := sqlstore.ParseAllowedIPs(v)
		if err != nil {
			return err
		}
		peer.AllowedIPs = ips
	case "preshared-key":
		b, err := os.ReadFile(v)
		if err != nil {
			return fmt.Errorf("failed to read preshared key file %q: %w", v, err)
		}
		psk, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(b)))
		if err != nil || len(psk) != 32 {
			return fmt.Errorf("failed to read preshared key file %q: not base64 of 32 bytes", v)
		}
		copy(peer.PresharedKey[:], psk)
	case "persistent-keepalive":
		if v == "off" {
			return nil
		}
		n, err := strconv.ParseUint(v, 10, 16)
		if err != nil {
			return fmt.Errorf("failed to parse persistent-keepalive %q: want 0..65535 or off", v)
		}
		peer.PersistentKeepalive = time.Duration(n) * time.Second
	case "endpoint":
		ep, err := netip.ParseAddrPort(v)
		if err != nil {
			return fmt.Errorf("failed to parse endpoint %q: want ip:port", v)
		}
		peer.Endpoint = ep
	case "comment":
		peer.Comment = v
	default:
		return fmt.Errorf("unknown peer option %q: want allowed-ips, preshared-key, persistent-keepalive, endpoint or comment", name)
	}
	return nil
}

func (p *peersCmd) remove(args []string) error {
	if len(args) != 1 {
		return fmt.Errorf("usage: wghooks peers remove IFACE KEY")
	}
	key, err := hooks.ParsePublicKey(args[0])
	if err != nil {
		return err
	}
	stored := false
	if s, err := p.open(false); err == nil {
		stored, err = s.delete(context.Background(), key)
		s.close()
		if err != nil {
			return err
		}
	} else if p.pg || !errors.Is(err, os.ErrNotExist) {
		return err
	}
	// Store first, daemon second: a lookup racing the removal finds
	// nothing, and the device cancels a lookup that was under way.
	running, err := p.tell("public_key="+key.Hex(), "remove=true")
	if err != nil {
		return err
	}
	switch {
	case stored && p.pg:
		fmt.Fprintf(p.out, "%s: removed peer %s from the fleet's store; every gateway holding it cuts it\n", p.iface, key)
	case stored && running:
		fmt.Fprintf(p.out, "%s: removed peer %s from the store and the running daemon\n", p.iface, key)
	case stored:
		fmt.Fprintf(p.out, "%s: removed peer %s from the store (no daemon running)\n", p.iface, key)
	case running:
		fmt.Fprintf(p.out, "%s: peer %s was not in the store; removed from the running daemon\n", p.iface, key)
	default:
		return fmt.Errorf("failed to remove peer %s: not in store %q and no daemon running", key, p.storeName())
	}
	return nil
}

// installed returns the daemon's peers: true for just-in-time ones.
func (p *peersCmd) installed() map[hooks.PublicKey]bool {
	c, err := ipc.Dial(p.dir, p.iface)
	if err != nil {
		return nil
	}
	defer c.Close()
	lines, err := c.Get()
	if err != nil {
		return nil
	}
	out := map[hooks.PublicKey]bool{}
	var cur hooks.PublicKey
	for _, l := range lines {
		switch l.Key {
		case "public_key":
			k, err := uapi.ParseKey(l.Value)
			if err != nil {
				continue
			}
			cur = k
			out[cur] = false
		case "wghooks_jit":
			out[cur] = l.Value == "true"
		}
	}
	return out
}

func (p *peersCmd) list(args []string) error {
	if len(args) != 0 {
		return fmt.Errorf("usage: wghooks peers list IFACE")
	}
	s, err := p.open(false)
	if err != nil {
		return err
	}
	defer s.close()
	inst := p.installed()
	n := 0
	err = s.each(context.Background(), func(peer sqlstore.Peer, disabled bool) error {
		n++
		state := "-"
		if disabled {
			state = "disabled"
		}
		if jit, ok := inst[peer.PublicKey]; ok {
			state = "installed"
			if !jit {
				state = "static"
			}
		}
		var ips []string
		for _, ip := range peer.AllowedIPs {
			ips = append(ips, ip.String())
		}
		line := fmt.Sprintf("%s  %-9s  allowed-ips %s", peer.PublicKey, state, strings.Join(ips, ","))
		if peer.PersistentKeepalive > 0 {
			line += fmt.Sprintf("  keepalive %ds", int(peer.PersistentKeepalive/time.Second))
		}
		if peer.Endpoint.IsValid() {
			line += "  endpoint " + peer.Endpoint.String()
		}
		if peer.Comment != "" {
			line += "  # " + peer.Comment
		}
		_, err := fmt.Fprintln(p.out, line)
		return err
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(p.out, "%d peers in %s\n", n, p.storeName())
	return nil
}

func (p *peersCmd) importConf(args []string) error {
	if len(args) != 1 {
		return fmt.Errorf("usage: wghooks peers import IFACE FILE|-  (e.g. wg showconf wg0 | wghooks peers import wg0 -)")
	}
	var r io.Reader = os.Stdin
	if args[0] != "-" {
		f, err := os.Open(args[0])
		if err != nil {
			return fmt.Errorf("failed to open %q: %w", args[0], err)
		}
		defer f.Close()
		r = f
	}
	peers, err := sqlstore.ParseConfig(r)
	if err != nil {
		return err
	}
	if len(peers) == 0 {
		return fmt.Errorf("failed to import from %q: no [Peer] sections", args[0])
	}
	s, err := p.open(true)
	if err != nil {
		return err
	}
	defer s.close()
	if err := s.put(context.Background(), peers, false); err != nil {
		return err
	}
	forget := make([]string, len(peers))
	for i, peer := range peers {
		forget[i] = "wghooks_jit_forget=" + peer.PublicKey.Hex()
	}
	if _, err := p.tellEach(forget); err != nil {
		return err
	}
	fmt.Fprintf(p.out, "%s: imported %d peers into %s\n", p.iface, len(peers), p.storeName())
	return nil
}
