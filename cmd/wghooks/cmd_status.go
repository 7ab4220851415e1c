package main

import (
	"encoding/base64"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/wghooks/wghooks/uapi"
)

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
