package main

import (
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/wghooks/wghooks/uapi"
	"github.com/wghooks/wghooks/wgconf"
)

// peerHex accepts a public key in wg's base64 or in hex.
func peerHex(s string) (string, error) {
	if b, err := base64.StdEncoding.DecodeString(s); err == nil && len(b) == 32 {
		return hex.EncodeToString(b), nil
	}
	if k, err := uapi.ParseKey(s); err == nil {
		return hex.EncodeToString(k[:]), nil
	}
	return "", fmt.Errorf("failed to parse peer key %q: want 32 bytes in base64 or hex", s)
}

func runEndpoint(dir string, args []string, out io.Writer) error {
	if len(args) != 3 {
		return fmt.Errorf("usage: wghooks endpoint IFACE PEER HOST:PORT|-")
	}
	pk, err := peerHex(args[1])
	if err != nil {
		return err
	}
	host := args[2]
	if host == "-" {
		host = ""
	}
	if err := setLines(dir, args[0], "public_key="+pk, "update_only=true", "wghooks_endpoint="+host); err != nil {
		return fmt.Errorf("failed to set endpoint %q of %s: %w", args[2], args[1], err)
	}
	if host == "" {
		fmt.Fprintf(out, "%s: peer %s keeps its endpoint, no longer by name\n", args[0], args[1])
	} else {
		fmt.Fprintf(out, "%s: peer %s endpoint %s (resolving)\n", args[0], args[1], host)
	}
	return nil
}

func runEndpoints(dir string, args []string, out io.Writer) error {
	iface, lines, err := getIface(dir, args)
	if err != nil {
		return err
	}
	type row struct{ key, inUse, host, cands, ttl, errText, failovers string }
	var rows []*row
	var cur *row
	for _, l := range lines {
		switch l.Key {
		case "public_key":
			cur = &row{key: l.Value}
			if k, err := uapi.ParseKey(l.Value); err == nil {
				cur.key = base64.StdEncoding.EncodeToString(k[:])
			}
			rows = append(rows, cur)
		case "endpoint":
			if cur != nil {
				cur.inUse = l.Value
			}
		case "wghooks_endpoint":
			if cur != nil {
				cur.host = l.Value
			}
		case "wghooks_endpoint_candidates":
			if cur != nil {
				cur.cands = strings.ReplaceAll(l.Value, ",", ", ")
			}
		case "wghooks_endpoint_ttl_sec":
			if cur != nil {
				cur.ttl = l.Value + "s"
			}
		case "wghooks_endpoint_error":
			if cur != nil {
				cur.errText = l.Value
			}
		case "wghooks_endpoint_failovers":
			if cur != nil {
				cur.failovers = l.Value
			}
		}
	}
	n := 0
	for _, r := range rows {
		if r.host == "" {
			continue
		}
		n++
		inUse := r.inUse
		if inUse == "" {
			inUse = "(none yet)"
		}
		fmt.Fprintf(out, "peer %s\n  host %s\n  in use %s\n  candidates %s\n", r.key, r.host, inUse, orNone(r.cands))
		if r.ttl != "" {
			fmt.Fprintf(out, "  next resolution within %s\n", r.ttl)
		}
		if r.failovers != "" && r.failovers != "0" {
			fmt.Fprintf(out, "  failovers %s\n", r.failovers)
		}
		if r.errText != "" {
			fmt.Fprintf(out, "  error %s\n", r.errText)
		}
	}
	if n == 0 {
		fmt.Fprintf(out, "%s: no hostname endpoints\n", iface)
	}
	return nil
}

func orNone(s string) string {
	if s == "" {
		return "(none yet)"
	}
	return s
}

func runResetSource(dir string, args []string, out io.Writer) error {
	switch len(args) {
	case 1:
		if err := setLines(dir, args[0], "wghooks_reset_source=true"); err != nil {
			return fmt.Errorf("failed to reset source addresses on %s: %w", args[0], err)
		}
		fmt.Fprintf(out, "%s: source addresses reset\n", args[0])
	case 2:
		pk, err := peerHex(args[1])
		if err != nil {
			return err
		}
		if err := setLines(dir, args[0], "public_key="+pk, "update_only=true", "wghooks_reset_source=true"); err != nil {
			return fmt.Errorf("failed to reset the source address of %s on %s: %w", args[1], args[0], err)
		}
		fmt.Fprintf(out, "%s: source address of %s reset\n", args[0], args[1])
	default:
		return fmt.Errorf("usage: wghooks reset-source IFACE [PEER]")
	}
	return nil
}

func runSetconf(dir string, args []string, out io.Writer) error {
	if len(args) != 2 {
		return fmt.Errorf("usage: wghooks setconf IFACE FILE")
	}
	f, err := os.Open(args[1])
	if err != nil {
		return fmt.Errorf("failed to read configuration %q: %w", args[1], err)
	}
	defer f.Close()
	conf, err := wgconf.Parse(f)
	if err != nil {
		return fmt.Errorf("failed to read configuration %q: %w", args[1], err)
	}
	if err := setLines(dir, args[0], conf.UAPI()...); err != nil {
		return fmt.Errorf("failed to apply %q to %s: %w", args[1], args[0], err)
	}
	fmt.Fprintf(out, "%s: applied %s (%d peers, %d by hostname)\n", args[0], args[1], len(conf.Peers), len(conf.HostEndpoints()))
	return nil
}
