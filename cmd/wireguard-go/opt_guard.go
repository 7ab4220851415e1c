package main

import (
	"fmt"
	"strconv"

	"wghooks/device"
)

// Settings for the handshake-flood guard:
//
//	WGHOOKS_GUARD_RATE=256   handshake initiations per second from new
//	                         source addresses taken without a cookie;
//	                         above it they must carry one (default 256;
//	                         off turns the guard off)
const envGuardRate = "WGHOOKS_GUARD_RATE"

func init() {
	optionParsers = append(optionParsers, parseGuardOptions)
}

func parseGuardOptions(cfg *device.Config, getenv func(string) string) error {
	switch v := getenv(envGuardRate); v {
	case "":
	case "off":
		cfg.Guard.Rate = -1
	default:
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			return fmt.Errorf("failed to parse %s=%q: want a positive number of initiations per second, or off", envGuardRate, v)
		}
		cfg.Guard.Rate = n
	}
	return nil
}
