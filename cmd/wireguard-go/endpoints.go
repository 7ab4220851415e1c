package main

import (
	"errors"
	"fmt"
	"os"
	"strings"

	wgdevice "golang.zx2c4.com/wireguard/device"

	"github.com/wghooks/wghooks/cmd/wireguard-go/internal/settings"
	"github.com/wghooks/wghooks/wgconf"
)

// applyEndpointsConfig reads the hostname Endpoints of a wg-quick file,
// which wg-quick resolves once before the daemon sees them. The default
// file may be missing (an interface not managed by wg-quick); a file a
// source names must exist. What the file holds never stops the daemon:
// `wg setconf` applies the file and judges it; the daemon only keeps the
// hostnames it can read and logs one line about the rest.
func applyEndpointsConfig(d *daemon, v settings.Value) error {
	if v.Off {
		return nil
	}
	hosts, problems, err := readHostEndpoints(v.Text)
	switch {
	case err == nil:
		d.cfg.Endpoints.Hosts = hosts
	case v.Source == settings.FromDefault && errors.Is(err, os.ErrNotExist):
	default:
		return err
	}
	if len(problems) > 0 {
		_, errorf := logFuncs(logLevel(), "")
		errorf("%s", skippedLine(v.Text, problems))
	}
	return nil
}

// readHostEndpoints returns the hostname endpoints of the file at path
// and what it could not use; err is only that the file cannot be opened.
func readHostEndpoints(path string) (map[wgdevice.NoisePublicKey]string, []wgconf.Problem, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	conf, problems := wgconf.ParseTolerant(f)
	out := map[wgdevice.NoisePublicKey]string{}
	for pk, h := range conf.HostEndpoints() {
		out[pk] = h
	}
	return out, problems, nil
}

// maxSkippedShown bounds how many problems the one log line names.
const maxSkippedShown = 5

// skippedLine is the one log line about the parts of path the daemon
// skipped. A Problem names a line and a key, never the line's text.
func skippedLine(path string, problems []wgconf.Problem) string {
	shown := problems
	if len(shown) > maxSkippedShown {
		shown = shown[:maxSkippedShown]
	}
	parts := make([]string, len(shown))
	for i, p := range shown {
		parts[i] = p.Error()
	}
	more := ""
	if n := len(problems) - len(shown); n > 0 {
		more = fmt.Sprintf("; and %d more", n)
	}
	return fmt.Sprintf("Skipped %d unusable parts of %q when reading its hostname endpoints (`wg setconf` applies the file itself): %s%s",
		len(problems), path, strings.Join(parts, "; "), more)
}
