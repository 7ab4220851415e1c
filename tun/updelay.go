package tun

import (
	"sync"

	wgtun "golang.zx2c4.com/wireguard/tun"
)

// UpDelay wraps a wgtun.Device and withholds its "link up" event from the
// upstream device. Upstream calls Device.Up by itself on that event; with
// the event withheld, wghooks calls Up after its own startup actions
// (applying saved state, then broadcasting handshakes) in a fixed order.
// All other events pass through.
type UpDelay struct {
	wgtun.Device
	events chan wgtun.Event

	mu   sync.Mutex
	onUp func()
	up   bool // the link reported up and no down since
	done chan struct{}
}

var _ wgtun.Device = (*UpDelay)(nil)

// NewUpDelay wraps dev. Call SetOnUp before the device reads events.
func NewUpDelay(dev wgtun.Device) *UpDelay {
	w := &UpDelay{
		Device: dev,
		events: make(chan wgtun.Event, 8),
		done:   make(chan struct{}),
	}
	go w.forward()
	return w
}

// Unwrap returns the wrapped TUN device.
func (w *UpDelay) Unwrap() wgtun.Device { return w.Device }

// SetOnUp sets the function called, on the event goroutine, each time the
// link goes up. It may block briefly but must not read TUN events. If the
// link already went up before SetOnUp, fn is called at once.
func (w *UpDelay) SetOnUp(fn func()) {
	w.mu.Lock()
	w.onUp = fn
	up := w.up
	w.mu.Unlock()
	if up && fn != nil {
		fn()
	}
}

// LinkUp reports whether the TUN link last reported up.
func (w *UpDelay) LinkUp() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.up
}

// Events returns the filtered event channel read by the upstream device.
func (w *UpDelay) Events() <-chan wgtun.Event { return w.events }

// Close closes the TUN device and waits for the event forwarder to end.
func (w *UpDelay) Close() error {
	err := w.Device.Close()
	<-w.done
	return err
}

func (w *UpDelay) forward() {
	defer close(w.done)
	defer close(w.events)
	for ev := range w.Device.Events() {
		var onUp func()
		if ev&wgtun.EventUp != 0 {
			w.mu.Lock()
			w.up = true
			onUp = w.onUp
			w.mu.Unlock()
			ev &^= wgtun.EventUp
		}
		if ev&wgtun.EventDown != 0 {
			w.mu.Lock()
			w.up = false
			w.mu.Unlock()
		}
		if ev != 0 {
			w.events <- ev
		}
		if onUp != nil {
			onUp()
		}
	}
}
