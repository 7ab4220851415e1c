package main

import (
	"fmt"
	"time"

	"wghooks/device"
	"wghooks/hooks"
	"wghooks/ops"
)

// Settings for running behind a UDP load balancer:
//
//	WGHOOKS_HTTP=127.0.0.1:9586   serve /healthz, /readyz and /metrics
//	                              (a bare port listens on loopback; off
//	                              when unset)
//	WGHOOKS_FLOW_ESCAPE=auto|off  move to a new source port when a peer
//	                              stops answering (default auto: only
//	                              while the listen port is random)
//	WGHOOKS_FLOW_ESCAPE_SILENCE=1s
//	                              data unanswered this long asks for a
//	                              probe handshake (default 1s)
//	WGHOOKS_FLOW_ESCAPE_HANDSHAKE_TIMEOUT=1s
//	                              an initiation unanswered this long is
//	                              lost (default 1s)
const (
	envHTTP                = "WGHOOKS_HTTP"
	envFlowEscape          = "WGHOOKS_FLOW_ESCAPE"
	envFlowEscapeSilence   = "WGHOOKS_FLOW_ESCAPE_SILENCE"
	envFlowEscapeHandshake = "WGHOOKS_FLOW_ESCAPE_HANDSHAKE_TIMEOUT"
)

// haHTTPAddr is the operations endpoint's address; empty: off.
var haHTTPAddr string

func init() {
	optionParsers = append(optionParsers, parseHAOptions)
	services = append(services, startOpsEndpoint)
}

func parseHAOptions(cfg *device.Config, getenv func(string) string) error {
	if v := getenv(envHTTP); v != "" {
		addr, err := ops.ListenAddr(v)
		if err != nil {
			return fmt.Errorf("failed to parse %s: %w", envHTTP, err)
		}
		haHTTPAddr = addr
	}
	switch v := getenv(envFlowEscape); v {
	case "", "auto", "on":
	case "off":
		cfg.HA.FlowEscapeOff = true
	default:
		return fmt.Errorf("failed to parse %s=%q: want auto or off", envFlowEscape, v)
	}
	for _, d := range []struct {
		env string
		to  *time.Duration
	}{
		{envFlowEscapeSilence, &cfg.HA.Silence},
		{envFlowEscapeHandshake, &cfg.HA.HandshakeTimeout},
	} {
		v := getenv(d.env)
		if v == "" {
			continue
		}
		dur, err := time.ParseDuration(v)
		if err != nil || dur <= 0 {
			return fmt.Errorf("failed to parse %s=%q: want a positive duration such as 1s or 500ms", d.env, v)
		}
		*d.to = dur
	}
	return nil
}

func startOpsEndpoint(dev *device.Device, iface string, logf hooks.Logf) (func(), error) {
	if haHTTPAddr == "" {
		return nil, nil
	}
	s, err := ops.Start(dev, haHTTPAddr, ops.Config{Interface: iface, Errorf: logf})
	if err != nil {
		return nil, err
	}
	return func() { s.Close() }, nil
}
