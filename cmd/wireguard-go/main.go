// Command wireguard-go is wghooks' drop-in replacement for upstream's
// userspace WireGuard daemon: the same command line, environment and UAPI
// socket, so `wg`, `wg-quick` and systemd units work unchanged, with
// wghooks' recovery features on top.
//
//	wireguard-go [-f|--foreground] INTERFACE-NAME
//	wireguard-go --version
//	wireguard-go --settings INTERFACE-NAME
//
// Environment, as upstream: WG_TUN_FD, WG_UAPI_FD, WG_PROCESS_FOREGROUND=1,
// LOG_LEVEL=verbose|debug|error|silent. wghooks' own settings are declared
// in one table (settings.go) and read from WGHOOKS_* variables and from
// /etc/wghooks/INTERFACE-NAME.conf, so wg-quick, which passes only the
// interface name, can still configure them. --settings prints the
// effective settings and where each came from, and exits 1 if they are
// invalid.
package main

import (
	"fmt"
	"io"
	"os"
	"runtime"
)

// Exit codes, as upstream.
const (
	exitSetupSuccess = 0
	exitSetupFailed  = 1
)

func usage() {
	fmt.Printf("Usage: %s [-f/--foreground] INTERFACE-NAME\n", os.Args[0])
}

func main() {
	if len(os.Args) == 2 && os.Args[1] == "--version" {
		fmt.Print(versionText(buildInfo(), runtime.GOOS, runtime.GOARCH))
		return
	}
	if len(os.Args) == 3 && os.Args[1] == "--settings" {
		os.Exit(printSettings(os.Stdout, os.Stderr, os.Args[2], os.Environ()))
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

// printSettings writes the effective settings of iface, one line each
// with the value and its source, or the reason they are invalid.
func printSettings(stdout, stderr io.Writer, iface string, environ []string) int {
	_, vs, err := readSettings(iface, environ)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", iface, err)
		return exitSetupFailed
	}
	if err := vs.Print(stdout); err != nil {
		fmt.Fprintf(stderr, "failed to print settings: %v\n", err)
		return exitSetupFailed
	}
	return exitSetupSuccess
}
