package main

import (
	"fmt"
	"io"
)

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
