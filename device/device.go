package device

import (
	"fmt"
	"sync"
	"sync/atomic"

	wgdevice "golang.zx2c4.com/wireguard/device"
	wgtun "golang.zx2c4.com/wireguard/tun"

	"wghooks/conn"
	"wghooks/tun"
)

// Device is a WireGuard interface: an unmodified upstream device plus
// wghooks' lifecycle around it.
type Device struct {
	wg   *wgdevice.Device
	bind *conn.Bind
	tun  *tun.UpDelay
	log  logger
	cfg  Config

	// lifecycle serializes Up, Down and Close.
	lifecycle struct {
		sync.Mutex
		up     bool
		closed bool
	}

	peers    peerSet
	stats    counters
	sources  sourceSet                // see sources.go
	identity atomic.Pointer[identity] // see identity.go; nil without a private key

	// Features, each in its own file; features lists them in call order.
	restart    *restart
	endpoints  *endpoints
	jit        *jit
	flowEscape *flowEscape
	handshakes *handshakeCounter
	guard      *guard
	features   []feature

	done      chan struct{} // closed when Close begins
	closed    chan struct{} // closed when Close has finished
	closeOnce sync.Once
	routines  sync.WaitGroup // goroutines owned by this Device
}

// New builds a Device on tunDev. The device comes up when the TUN link
// does (netstack TUNs are up from the start), or on Up.
//
// New takes ownership of tunDev: Close closes it, also when New fails.
func New(tunDev wgtun.Device, cfg Config) (*Device, error) {
	if tunDev == nil {
		return nil, fmt.Errorf("failed to create device: nil TUN")
	}
	name := cfg.Name
	if name == "" {
		if n, err := tunDev.Name(); err == nil && n != "" {
			name = n
		} else {
			name = "wg"
		}
	}
	d := &Device{
		bind:   conn.NewBind(cfg.Bind),
		tun:    tun.NewUpDelay(tunDev),
		log:    newLogger(&cfg, "("+name+") "),
		cfg:    cfg,
		done:   make(chan struct{}),
		closed: make(chan struct{}),
	}
	d.peers.init()
	d.wg = wgdevice.NewDevice(d.tun, d.bind, d.log.upstream())
	d.restart = newRestart(d)
	d.endpoints = newEndpoints(d)
	d.jit = newJIT(d)
	d.flowEscape = newFlowEscape(d)
	d.handshakes = &handshakeCounter{c: &d.stats}
	d.guard = newGuard(d)
	d.features = []feature{d.handshakes, d.guard, d.restart, d.endpoints, d.jit, d.flowEscape}
	for _, f := range d.features {
		if err := f.start(d); err != nil {
			d.Close()
			return nil, fmt.Errorf("failed to create device: %w", err)
		}
	}
	d.installBindHooks()
	d.tun.SetOnLink(func(up bool) {
		if !up {
			if err := d.Down(); err != nil {
				d.log.Errorf("%v", err)
			}
			return
		}
		if err := d.Up(); err != nil && !d.isClosed() {
			d.log.Errorf("failed to bring device up on link up: %v", err)
		}
	})
	return d, nil
}

// Upstream returns the upstream device, for its exported methods. Changing
// peers through it bypasses wghooks' peer view; use IpcSet instead.
func (d *Device) Upstream() *wgdevice.Device { return d.wg }

// Bind returns the wrapping bind.
func (d *Device) Bind() *conn.Bind { return d.bind }

// Up brings the device up: sockets open, peers start. It is idempotent.
func (d *Device) Up() error {
	d.lifecycle.Lock()
	defer d.lifecycle.Unlock()
	if d.lifecycle.closed {
		return fmt.Errorf("failed to bring device up: device closed")
	}
	if d.lifecycle.up {
		return nil
	}
	for _, f := range d.features {
		f.beforeUp()
	}
	if err := d.wg.Up(); err != nil {
		return fmt.Errorf("failed to bring device up: %w", err)
	}
	d.lifecycle.up = true
	d.log.Verbosef("device up, %d peers", d.peers.len())
	for _, f := range d.features {
		f.afterUp()
	}
	return nil
}

// Down takes the device down: sockets close, sessions are kept.
func (d *Device) Down() error {
	d.lifecycle.Lock()
	defer d.lifecycle.Unlock()
	if d.lifecycle.closed {
		return nil
	}
	d.lifecycle.up = false
	if err := d.wg.Down(); err != nil {
		return fmt.Errorf("failed to take device down: %w", err)
	}
	return nil
}

func (d *Device) isClosed() bool {
	d.lifecycle.Lock()
	defer d.lifecycle.Unlock()
	return d.lifecycle.closed
}

// IsUp reports whether the device is up.
func (d *Device) IsUp() bool {
	d.lifecycle.Lock()
	defer d.lifecycle.Unlock()
	return d.lifecycle.up
}

// Close shuts the device down and waits for its goroutines. It is
// idempotent and safe to call concurrently.
func (d *Device) Close() error {
	d.closeOnce.Do(func() {
		d.lifecycle.Lock()
		d.lifecycle.closed = true
		d.lifecycle.up = false
		d.lifecycle.Unlock()
		close(d.done)
		for _, f := range d.features {
			if f != nil {
				f.close()
			}
		}
		d.wg.Close()
		d.routines.Wait()
		close(d.closed)
	})
	return nil
}

// Wait returns a channel closed once the device has closed, by Close or
// because the upstream device stopped (its TUN went away).
func (d *Device) Wait() <-chan struct{} {
	ch := make(chan struct{})
	go func() {
		select {
		case <-d.closed:
		case <-d.wg.Wait():
		}
		close(ch)
	}()
	return ch
}
