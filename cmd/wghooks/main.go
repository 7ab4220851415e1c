// Command wghooks controls a running wghooks daemon over its UAPI socket.
//
//	wghooks [-socket-dir DIR] status IFACE
//	wghooks [-socket-dir DIR] get IFACE     (raw get reply)
//
// Later features add their commands here (drain, broadcast, source reset,
// endpoints, peer store).
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
)

type command struct {
	usage string
	run   func(dir string, args []string, out io.Writer) error
}

var commands = map[string]command{
	"status": {"status IFACE       peers, endpoints, last handshakes, wghooks' extension state", runStatus},
	"get":    {"get IFACE          the raw UAPI get reply", runGet},
	"keys":   {"keys               the UAPI extension keys this build understands", runKeys},
}

func main() {
	fs := flag.NewFlagSet("wghooks", flag.ContinueOnError)
	dir := fs.String("socket-dir", "", "directory of UAPI sockets (default /var/run/wireguard)")
	fs.Usage = func() {
		fmt.Fprintf(os.Stderr, "usage: wghooks [-socket-dir DIR] COMMAND ARGS\n\ncommands:\n")
		for _, c := range sortedCommands() {
			fmt.Fprintf(os.Stderr, "  %s\n", c.usage)
		}
	}
	if err := fs.Parse(os.Args[1:]); err != nil {
		os.Exit(2)
	}
	if fs.NArg() == 0 {
		fs.Usage()
		os.Exit(2)
	}
	cmd, ok := commands[fs.Arg(0)]
	if !ok {
		fmt.Fprintf(os.Stderr, "wghooks: unknown command %q\n", fs.Arg(0))
		fs.Usage()
		os.Exit(2)
	}
	if err := cmd.run(*dir, fs.Args()[1:], os.Stdout); err != nil {
		fmt.Fprintf(os.Stderr, "wghooks: %v\n", err)
		os.Exit(1)
	}
}
