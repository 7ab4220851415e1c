// Command wghooks controls a running wghooks daemon over its UAPI socket.
//
//	wghooks [-socket-dir DIR] COMMAND ARGS
//
// The commands are one table, commands in commands.go; run wghooks with no
// arguments for the list.
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/wghooks/wghooks/ipc"
)

func main() {
	fs := flag.NewFlagSet("wghooks", flag.ContinueOnError)
	dir := fs.String("socket-dir", "", "directory of UAPI sockets (default "+ipc.DefaultDir+")")
	fs.Usage = func() {
		fmt.Fprintf(os.Stderr, "usage: wghooks [-socket-dir DIR] COMMAND ARGS\n\ncommands:\n")
		for _, c := range commands {
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
	cmd := findCommand(fs.Arg(0))
	if cmd == nil {
		fmt.Fprintf(os.Stderr, "wghooks: unknown command %q\n", fs.Arg(0))
		fs.Usage()
		os.Exit(2)
	}
	if err := cmd.run(*dir, fs.Args()[1:], os.Stdout); err != nil {
		fmt.Fprintf(os.Stderr, "wghooks: %v\n", err)
		os.Exit(1)
	}
}
