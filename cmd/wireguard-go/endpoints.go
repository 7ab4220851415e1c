package main

import (
	"errors"
	"fmt"
	"os"

	wgdevice "golang.zx2c4.com/wireguard/device"

	"wghooks/cmd/wireguard-go/internal/settings"
	"wghooks/wgconf"
)

// applyEndpointsConfig reads the hostname Endpoints of a wg-quick file,
// which wg-quick resolves once before the daemon sees them. The default
// file may be missing (an interface not managed by wg-quick); a file a
// source names must exist.
func applyEndpointsConfig(d *daemon, v settings.Value) error {
	if v.Off {
		return nil
	}
	hosts, err := readHostEndpoints(v.Text)
	switch {
	case err == nil:
		d.cfg.Endpoints.Hosts = hosts
	case v.Source == settings.FromDefault && errors.Is(err, os.ErrNotExist):
	default:
		return err
	}
	return nil
}

func readHostEndpoints(path string) (map[wgdevice.NoisePublicKey]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	conf, err := wgconf.Parse(f)
	if err != nil {
		return nil, fmt.Errorf("failed to parse %q: %w", path, err)
	}
	out := map[wgdevice.NoisePublicKey]string{}
	for pk, h := range conf.HostEndpoints() {
		out[pk] = h
	}
	return out, nil
}
