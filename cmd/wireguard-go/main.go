// Command wireguard-go is wghooks' drop-in replacement for upstream's
// userspace WireGuard daemon: the same command line, environment and UAPI
// socket, so `wg`, `wg-quick` and systemd units work unchanged, with
// wghooks' recovery features on top.
//
//	wireguard-go [-f|--foreground] INTERFACE-NAME
//	wireguard-go --version
//
// Environment, as upstream: WG_TUN_FD, WG_UAPI_FD, WG_PROCESS_FOREGROUND=1,
// LOG_LEVEL=verbose|debug|error|silent. wghooks' own settings are read
// from WGHOOKS_* variables (see options.go), so wg-quick, which passes only
// the interface name, can still configure them.
package main

import (
	"fmt"
	"os"
	"runtime"
)

// Exit codes, as upstream.
const (
	exitSetupSuccess = 0
	exitSetupFailed  = 1
)

// version is reported by --version; set with -ldflags "-X main.version=...".
var version = "0.1.0-wghooks"

func usage() {
	fmt.Printf("Usage: %s [-f/--foreground] INTERFACE-NAME\n", os.Args[0])
}

func main() {
	if len(os.Args) == 2 && os.Args[1] == "--version" {
		fmt.Printf("wireguard-go v%s\n\nUserspace WireGuard daemon for %s-%s, built on wghooks.\n", version, runtime.GOOS, runtime.GOARCH)
		return
	}
	args, err := parseArgs(os.Args[1:])
	if err != nil {
		usage()
		return
	}
	os.Exit(run(args))
}

type args struct {
	foreground bool
	iface      string
}

// parseArgs accepts exactly upstream's forms.
func parseArgs(a []string) (args, error) {
	switch {
	case len(a) == 1 && a[0] != "-f" && a[0] != "--foreground":
		return args{iface: a[0]}, nil
	case len(a) == 2 && (a[0] == "-f" || a[0] == "--foreground"):
		return args{foreground: true, iface: a[1]}, nil
	}
	return args{}, fmt.Errorf("bad arguments %q", a)
}
