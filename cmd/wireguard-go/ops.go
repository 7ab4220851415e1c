package main

import (
	"fmt"

	"github.com/wghooks/wghooks/device"
	"github.com/wghooks/wghooks/hooks"
	"github.com/wghooks/wghooks/ops"
)

// startOpsEndpoint serves /healthz, /readyz and /metrics when WGHOOKS_HTTP
// asks for it.
func (d *daemon) startOpsEndpoint(dev *device.Device, iface string, logf hooks.Logf) (func(), error) {
	if d.httpAddr == "" {
		return nil, nil
	}
	cfg, err := d.opsConfig(iface, logf)
	if err != nil {
		return nil, err
	}
	s, err := ops.Start(dev, d.httpAddr, cfg)
	if err != nil {
		return nil, err
	}
	return func() { s.Close() }, nil
}

// opsConfig is the endpoint's configuration, its token read from
// WGHOOKS_METRICS_TOKEN_FILE.
func (d *daemon) opsConfig(iface string, logf hooks.Logf) (ops.Config, error) {
	cfg := ops.Config{Interface: iface, Errorf: logf, MaxPeers: d.metricsPeers}
	if d.metricsTokenFile != "" {
		token, err := ops.ReadTokenFile(d.metricsTokenFile)
		if err != nil {
			return cfg, fmt.Errorf("WGHOOKS_METRICS_TOKEN_FILE: %w", err)
		}
		cfg.Token = token
	}
	return cfg, nil
}
