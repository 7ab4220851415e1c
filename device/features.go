package device

import (
	wgconn "golang.zx2c4.com/wireguard/conn"

	"wghooks/conn"
)

// feature is one lifecycle extension of the device. Each lives in its own
// file (restart.go, endpoints.go, provision.go, flowescape.go) and owns its
// state; the Device calls every feature at the same points, in the order
// of Device.features:
//
//	start     once, from New, before any configuration; starts goroutines
//	          with d.goroutine so Close waits for them
//	beforeUp  with the lifecycle lock held, before upstream's Up
//	afterUp   with the lifecycle lock held, after upstream's Up succeeded
//	close     once, from Close, before the upstream device closes
//
// A feature that wants to see datagrams returns the message types in
// receiveTypes (a conn.TypeMask) and handles them in onReceive, under the
// contract of conn.Hooks.OnReceive; onSend sees every outgoing batch under
// the contract of conn.Hooks.OnSend.
type feature interface {
	start(d *Device) error
	beforeUp()
	afterUp()
	close()
	receiveTypes() uint8
	onReceive(packet []byte, ep wgconn.Endpoint) conn.Verdict
	onSend(bufs [][]byte, ep wgconn.Endpoint)
}

// noFeature is embedded by features to default the methods they do not
// need.
type noFeature struct{}

func (noFeature) start(*Device) error                            { return nil }
func (noFeature) beforeUp()                                      {}
func (noFeature) afterUp()                                       {}
func (noFeature) close()                                         {}
func (noFeature) receiveTypes() uint8                            { return 0 }
func (noFeature) onReceive([]byte, wgconn.Endpoint) conn.Verdict { return conn.Pass }
func (noFeature) onSend([][]byte, wgconn.Endpoint)               {}

// goroutine runs fn on a goroutine owned by the device: Close waits for
// it. fn must return when ctx-like signal d.done is closed.
func (d *Device) goroutine(fn func()) {
	d.routines.Add(1)
	go func() {
		defer d.routines.Done()
		fn()
	}()
}

// Done returns a channel closed when Close begins, for feature goroutines
// to stop on.
func (d *Device) Done() <-chan struct{} { return d.done }

// installBindHooks wires the features' receive and send hooks into the
// bind, building a per-type dispatch table once so the per-packet cost is
// one mask test and one slice walk.
func (d *Device) installBindHooks() {
	var mask uint8
	var byType [8][]feature
	var senders []feature
	for _, f := range d.features {
		m := f.receiveTypes()
		mask |= m
		for t := 0; t < 8; t++ {
			if m&(1<<t) != 0 {
				byType[t] = append(byType[t], f)
			}
		}
		senders = append(senders, f)
	}
	d.bind.SetHooks(&conn.Hooks{
		ReceiveTypes: mask,
		OnReceive: func(packet []byte, ep wgconn.Endpoint) conn.Verdict {
			for _, f := range byType[packet[0]&7] {
				if f.onReceive(packet, ep) == conn.Hold {
					return conn.Hold
				}
			}
			return conn.Pass
		},
		OnSend: func(bufs [][]byte, ep wgconn.Endpoint) {
			for _, f := range senders {
				f.onSend(bufs, ep)
			}
		},
	})
}
