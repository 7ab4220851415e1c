package main

import (
	"fmt"

	"github.com/wghooks/wghooks/device"
	"github.com/wghooks/wghooks/hooks"
)

// service is a daemon-side companion of the device. start returns a stop
// function (nil: nothing to stop).
type service struct {
	name  string
	start func(dev *device.Device, iface string, logf hooks.Logf) (stop func(), err error)
}

// services are the daemon's companions of the device, all of them, in the
// order they start (they stop in reverse): the operations endpoint, then
// the peer store, the order they have always had.
func (d *daemon) services() []service {
	return []service{
		{"operations endpoint", d.startOpsEndpoint},
		{"peer store", d.startPeerStore},
	}
}

// startServices starts d's services; on error it stops those started.
// The returned function stops them all, in reverse order.
func (d *daemon) startServices(dev *device.Device, iface string, logf hooks.Logf) (stopAll func(), err error) {
	var stops []func()
	stopAll = func() {
		for i := len(stops) - 1; i >= 0; i-- {
			stops[i]()
		}
	}
	for _, s := range d.services() {
		stop, err := s.start(dev, iface, logf)
		if err != nil {
			stopAll()
			return nil, fmt.Errorf("failed to start %s: %w", s.name, err)
		}
		if stop != nil {
			stops = append(stops, stop)
		}
	}
	return stopAll, nil
}
