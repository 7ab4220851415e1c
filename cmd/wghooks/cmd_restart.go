package main

import (
	"fmt"
	"io"
)

// Restart commands: drain before a planned restart, broadcast after one.
func init() {
	commands["drain"] = command{"drain IFACE        expire every session, save the state file, report draining", restartSetCmd("drain=true", "drained")}
	commands["undrain"] = command{"undrain IFACE      stop reporting draining (restart called off)", restartSetCmd("drain=false", "no longer draining")}
	commands["broadcast"] = command{"broadcast IFACE    send a handshake initiation to every peer with a known endpoint", restartSetCmd("wghooks_broadcast=true", "handshake initiations sent")}
	commands["save-state"] = command{"save-state IFACE   write the state file now", restartSetCmd("wghooks_save_state=true", "state file written")}
}

// restartSetCmd returns a command that sends one extension key in a set
// transaction and prints done when the daemon accepted it.
func restartSetCmd(line, done string) func(dir string, args []string, out io.Writer) error {
	return func(dir string, args []string, out io.Writer) error {
		iface, err := oneIface(args)
		if err != nil {
			return err
		}
		if err := setLines(dir, iface, line); err != nil {
			return fmt.Errorf("failed to send %q to %s: %w", line, iface, err)
		}
		fmt.Fprintf(out, "%s: %s\n", iface, done)
		return nil
	}
}
