package main

import (
	"fmt"
	"io"
)

// The CLI does not link the engine (wghooks/device): the keys and their docs
// come from keys_gen.go, generated from device.ExtensionKeys().
//go:generate go run ./genkeys

// runKeys lists wghooks' UAPI extension keys, for scripts that speak the
// socket directly (`nc -U`).
func runKeys(_ string, args []string, out io.Writer) error {
	if len(args) != 0 {
		return fmt.Errorf("keys takes no arguments, got %q", args)
	}
	for _, k := range extensionKeys {
		fmt.Fprintln(out, k)
	}
	return nil
}
