package tun

import (
	"sync"

	wgtun "golang.zx2c4.com/wireguard/tun"
)

// UpDelay wraps a wgtun.Device and withholds its "link up" and "link down"
// events from the upstream device. Upstream calls Device.Up and Down by
// itself on them; with the events withheld, wghooks runs its own startup
// actions (applying saved state, then broadcasting handshakes) around Up in
// a fixed order, and its view of up/down never disagrees with upstream's.
// Other events (MTU) pass through.
type UpDelay struct {
	wgtun.Device
	events chan wgtun.Event

	mu     sync.Mutex
	onLink func(up bool)
	up     bool // the link reported up and no down since
	done   chan struct{}

	// read is the optional read filter and packet injection used by the
	// just-in-time outbound side; readhook.go defines Read around it.
	read readHook
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

// SetOnLink sets the function called, on the event goroutine, each time
// the link goes up or down. It may block briefly but must not read TUN
// events. If the link already went up before SetOnLink, fn(true) is called
// at once.
func (w *UpDelay) SetOnLink(fn func(up bool)) {
	w.mu.Lock()
	w.onLink = fn
	up := w.up
	w.mu.Unlock()
	if up && fn != nil {
		fn(true)
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
		if rest := ev &^ (wgtun.EventUp | wgtun.EventDown); rest != 0 {
			w.events <- rest
		}
		// Upstream reports down then up in one event when both happened;
		// apply them in that order.
		if ev&wgtun.EventDown != 0 {
			w.link(false)
		}
		if ev&wgtun.EventUp != 0 {
			w.link(true)
		}
	}
}

func (w *UpDelay) link(up bool) {
	w.mu.Lock()
	changed := w.up != up
	w.up = up
	fn := w.onLink
	w.mu.Unlock()
	if changed && fn != nil {
		fn(up)
	}
}
