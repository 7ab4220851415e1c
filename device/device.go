package device

import (
	"fmt"
	"sync"
	"sync/atomic"

	wgdevice "golang.zx2c4.com/wireguard/device"
	wgtun "golang.zx2c4.com/wireguard/tun"

	"github.com/wghooks/wghooks/conn"
	"github.com/wghooks/wghooks/device/feature"
	"github.com/wghooks/wghooks/tun"
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
	stats    feature.Counters
	sources  *feature.Sources
	identity atomic.Pointer[feature.Identity] // nil without a private key
	ready    readiness

	// features are called in this order (features.go says why); keys
	// are their extension keys.
	features []feature.Feature
	keys     extensionKeys
	handles

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
		bind:    conn.NewBind(cfg.Bind),
		tun:     tun.NewUpDelay(tunDev),
		log:     newLogger(&cfg, "("+name+") "),
		cfg:     cfg,
		sources: feature.NewSources(),
		done:    make(chan struct{}),
		closed:  make(chan struct{}),
	}
	d.peers.init()
	d.wg = wgdevice.NewDevice(d.tun, d.bind, d.log.upstream())
	if err := d.buildFeatures(); err != nil {
		d.Close()
		return nil, fmt.Errorf("failed to create device: %w", err)
	}
	d.goroutine(d.expireSources)
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
		f.BeforeUp()
	}
	if err := d.wg.Up(); err != nil {
		return fmt.Errorf("failed to bring device up: %w", err)
	}
	d.lifecycle.up = true
	d.log.Verbosef("device up, %d peers", d.peers.len())
	for _, f := range d.features {
		f.AfterUp()
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
			f.Close()
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

// goroutine runs fn on a goroutine owned by the device: Close waits for
// it. fn must return once d.done is closed.
func (d *Device) goroutine(fn func()) {
	d.routines.Add(1)
	go func() {
		defer d.routines.Done()
		fn()
	}()
}

// Done returns a channel closed when Close begins, for goroutines to stop
// on.
func (d *Device) Done() <-chan struct{} { return d.done }
