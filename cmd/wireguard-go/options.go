package main

import (
	"os"

	wgdevice "golang.zx2c4.com/wireguard/device"

	"wghooks/device"
	"wghooks/hooks"
)

// Environment variables of upstream's contract.
const (
	envTunFD      = "WG_TUN_FD"
	envUAPIFD     = "WG_UAPI_FD"
	envForeground = "WG_PROCESS_FOREGROUND"
	envLogLevel   = "LOG_LEVEL"
)

// logLevel reads LOG_LEVEL as upstream does (default: errors only).
func logLevel() int {
	switch os.Getenv(envLogLevel) {
	case "verbose", "debug":
		return wgdevice.LogLevelVerbose
	case "silent":
		return wgdevice.LogLevelSilent
	}
	return wgdevice.LogLevelError
}

// optionParsers read each feature's WGHOOKS_* settings into the device
// configuration. Each feature's opt_*.go file appends its parser from
// init, so features do not edit each other's files.
var optionParsers []func(cfg *device.Config, getenv func(string) string) error

// services start daemon-side companions of the device (an HTTP endpoint,
// a peer store). Each returns a stop function run at shutdown, in reverse
// order. Registered from init in opt_*.go files.
var services []func(dev *device.Device, iface string, logf hooks.Logf) (stop func(), err error)

// buildConfig assembles the device configuration from the environment.
func buildConfig(iface string, verbosef, errorf hooks.Logf) (device.Config, error) {
	cfg := device.Config{Name: iface, Verbosef: verbosef, Errorf: errorf}
	for _, parse := range optionParsers {
		if err := parse(&cfg, os.Getenv); err != nil {
			return cfg, err
		}
	}
	return cfg, nil
}
