package main

import (
	"os"

	wgdevice "golang.zx2c4.com/wireguard/device"
)

// Environment variables of upstream's contract. wghooks' own WGHOOKS_*
// settings are in settings.go.
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
