package main

import (
	"fmt"
	"path/filepath"
	"time"

	"wghooks/device"
)

// Settings for recovery across restarts:
//
//	WGHOOKS_BROADCAST=on|off      handshake initiation to every peer with
//	                              a known endpoint when the interface comes
//	                              up, or at the first `wg setconf` if the
//	                              link came up before it (default on)
//	WGHOOKS_STATE_FILE=PATH|off   learned endpoints and last handshakes,
//	                              saved on drain, on exit and periodically,
//	                              applied at the next start (default
//	                              /var/lib/wghooks/IFACE.json)
//	WGHOOKS_STATE_INTERVAL=30s    how often the state file is rewritten
//	                              while up (0 or off: only on drain and exit)
//	WGHOOKS_STATE_MAX_AGE=24h     an older state file is stale and ignored
//	WGHOOKS_STALE_WAKE=on|off     handshake at once when a known peer sends
//	                              data on a session from before the restart
//	                              (default on)
//	WGHOOKS_DEAD_PEER_TIMEOUT=5s  client side: a peer sent to and silent this
//	                              long gets a handshake now (default off)
const (
	envBroadcast       = "WGHOOKS_BROADCAST"
	envStateFile       = "WGHOOKS_STATE_FILE"
	envStateInterval   = "WGHOOKS_STATE_INTERVAL"
	envStateMaxAge     = "WGHOOKS_STATE_MAX_AGE"
	envStaleWake       = "WGHOOKS_STALE_WAKE"
	envDeadPeerTimeout = "WGHOOKS_DEAD_PEER_TIMEOUT"
)

func init() {
	optionParsers = append(optionParsers, parseRestartOptions)
}

func parseRestartOptions(cfg *device.Config, getenv func(string) string) error {
	r := &cfg.Restart
	r.Broadcast = device.BroadcastAtFirstPeers
	if off, err := restartOnOff(getenv, envBroadcast); err != nil {
		return err
	} else if off {
		r.Broadcast = device.BroadcastOff
	}
	switch v := getenv(envStateFile); v {
	case "":
		r.StateFile = filepath.Join(device.DefaultStateDir, cfg.Name+".json")
	case "off":
	default:
		r.StateFile = v
	}
	var err error
	never := time.Duration(-1)
	if r.StateInterval, err = restartDuration(getenv, envStateInterval, &never); err != nil {
		return err
	}
	if r.StateMaxAge, err = restartDuration(getenv, envStateMaxAge, nil); err != nil {
		return err
	}
	if r.NoStaleWake, err = restartOnOff(getenv, envStaleWake); err != nil {
		return err
	}
	off := time.Duration(0)
	if r.DeadPeerTimeout, err = restartDuration(getenv, envDeadPeerTimeout, &off); err != nil {
		return err
	}
	return nil
}

// restartOnOff reads an on/off setting; off reports "off".
func restartOnOff(getenv func(string) string, env string) (off bool, err error) {
	switch v := getenv(env); v {
	case "", "on", "true", "1":
		return false, nil
	case "off", "false", "0":
		return true, nil
	default:
		return false, fmt.Errorf("failed to parse %s=%q: want on or off", env, v)
	}
}

// restartDuration reads a positive duration; "" leaves the device default
// (0), and "0" or "off" gives *ifOff where the setting can be off.
func restartDuration(getenv func(string) string, env string, ifOff *time.Duration) (time.Duration, error) {
	switch v := getenv(env); {
	case v == "":
		return 0, nil
	case (v == "0" || v == "off") && ifOff != nil:
		return *ifOff, nil
	default:
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return 0, fmt.Errorf("failed to parse %s=%q: want a positive duration such as 30s, or off", env, v)
		}
		return d, nil
	}
}
