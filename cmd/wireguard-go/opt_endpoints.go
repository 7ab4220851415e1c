package main

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	wgdevice "golang.zx2c4.com/wireguard/device"

	"wghooks/device"
	"wghooks/hooks/dnsresolver"
	"wghooks/wgconf"
)

// Settings for endpoints that heal:
//
//	WGHOOKS_ENDPOINTS_CONFIG=PATH|off  a wg-quick style file whose hostname
//	                              Endpoints the device keeps as names (wg-quick
//	                              resolves them once before the daemon sees
//	                              them); applied to each peer when it is
//	                              configured. Default /etc/wireguard/IFACE.conf
//	                              when that file exists.
//	WGHOOKS_DNS=ADDR[,ADDR...]    DNS servers (ip or ip:port) for hostname
//	                              endpoints (default: /etc/resolv.conf's)
//	WGHOOKS_ENDPOINT_MIN_TTL=10s  floor of the re-resolution interval
//	WGHOOKS_ENDPOINT_MAX_TTL=5m   ceiling of the re-resolution interval
//	WGHOOKS_FAILBACK=30s          how often a peer that left IPv6 tries it again
//	WGHOOKS_ROUTE_WATCH=on|off    reset cached source addresses when routes,
//	                              addresses or links change (default on)
const (
	envEndpointsConfig = "WGHOOKS_ENDPOINTS_CONFIG"
	envDNS             = "WGHOOKS_DNS"
	envEndpointMinTTL  = "WGHOOKS_ENDPOINT_MIN_TTL"
	envEndpointMaxTTL  = "WGHOOKS_ENDPOINT_MAX_TTL"
	envFailback        = "WGHOOKS_FAILBACK"
	envRouteWatch      = "WGHOOKS_ROUTE_WATCH"
)

// wireguardConfigDir is where wg-quick keeps interface files.
var wireguardConfigDir = "/etc/wireguard"

func init() {
	optionParsers = append(optionParsers, parseEndpointOptions)
}

func parseEndpointOptions(cfg *device.Config, getenv func(string) string) error {
	e := &cfg.Endpoints
	path := getenv(envEndpointsConfig)
	explicit := path != ""
	if path == "" && cfg.Name != "" {
		path = filepath.Join(wireguardConfigDir, cfg.Name+".conf")
	}
	if path != "off" && path != "" {
		hosts, err := readHostEndpoints(path)
		switch {
		case err == nil:
			e.Hosts = hosts
		case !explicit && errors.Is(err, os.ErrNotExist):
		default:
			return fmt.Errorf("failed to read %s=%q: %w", envEndpointsConfig, path, err)
		}
	}
	if v := getenv(envDNS); v != "" {
		r := &dnsresolver.Resolver{}
		for _, s := range strings.Split(v, ",") {
			s = strings.TrimSpace(s)
			ap, err := netip.ParseAddrPort(s)
			if err != nil {
				a, aerr := netip.ParseAddr(s)
				if aerr != nil {
					return fmt.Errorf("failed to parse %s=%q: %q is not an address", envDNS, v, s)
				}
				ap = netip.AddrPortFrom(a, 53)
			}
			r.Servers = append(r.Servers, ap)
		}
		e.Resolver = r
	}
	for _, d := range []struct {
		env string
		dst *time.Duration
	}{{envEndpointMinTTL, &e.MinTTL}, {envEndpointMaxTTL, &e.MaxTTL}, {envFailback, &e.FailbackInterval}} {
		v := getenv(d.env)
		if v == "" {
			continue
		}
		dur, err := time.ParseDuration(v)
		if err != nil || dur <= 0 {
			return fmt.Errorf("failed to parse %s=%q: want a positive duration like 30s", d.env, v)
		}
		*d.dst = dur
	}
	switch v := getenv(envRouteWatch); v {
	case "", "on":
	case "off":
		e.NoRouteWatch = true
	default:
		return fmt.Errorf("failed to parse %s=%q: want on or off", envRouteWatch, v)
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
		return nil, err
	}
	out := map[wgdevice.NoisePublicKey]string{}
	for pk, h := range conf.HostEndpoints() {
		out[pk] = h
	}
	return out, nil
}
