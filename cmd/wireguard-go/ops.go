package main

import (
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
	s, err := ops.Start(dev, d.httpAddr, ops.Config{Interface: iface, Errorf: logf})
	if err != nil {
		return nil, err
	}
	return func() { s.Close() }, nil
}
