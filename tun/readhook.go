package tun

// The read hook lets wghooks see each packet the TUN hands to the
// upstream device, keep some back, and hand packets to the device later
// (the just-in-time outbound side holds a packet for a peer that is not
// installed yet and gives it back once it is).
//
// Without a filter, Read is the wrapped TUN's Read: nothing changes. With
// one, a pump goroutine reads the wrapped TUN into buffers of its own (two
// sets, so it reads the next batch while the device takes the last) and
// Read copies packets out of them: that is what lets a packet handed back
// by InjectRead reach a device whose reader would otherwise sit blocked
// in the wrapped TUN's Read until the next packet arrived. The cost, paid
// only with a filter set, is one copy per packet and one hand-off per
// batch.
//
// The pump's end: it reads until the wrapped TUN's Read fails with
// anything but ErrTooManySegments (it does once the TUN is closed), queues
// that error for Read and returns. Its hand-offs never block once it has
// failed: two buffer sets, a queue of two.

import (
	"errors"
	"sync"
	"sync/atomic"

	wgtun "golang.zx2c4.com/wireguard/tun"
)

// ReadFilter decides, for each packet the TUN hands to the device, whether
// the device gets it now. It runs on the goroutine calling Read (upstream's
// TUN reader): it must not block and must not call into the device. pkt
// is borrowed until it returns; a filter that wants the packet later
// copies it and returns false.
type ReadFilter func(pkt []byte) (pass bool)

// MaxInjected bounds the packets waiting for Read after InjectRead.
const MaxInjected = 64

// readHook is UpDelay's optional read filter and injection queue.
type readHook struct {
	filter   atomic.Pointer[ReadFilter]
	initOnce sync.Once
	injected chan []byte // made before filter is first stored

	// Used only by the goroutine calling Read.
	full   chan *readBatch // filled by the pump, in order; nil before it starts
	free   chan *readBatch // emptied by Read
	cur    *readBatch      // being copied out by Read
	failed error           // the pump's last error, once Read returned it
}

type readBatch struct {
	bufs  [][]byte
	sizes []int
	n     int   // packets read
	next  int   // first packet Read has not looked at
	err   error // returned by the wrapped Read with these packets
}

// SetReadFilter makes Read pass its packets through f, also a Read that
// was already waiting in the wrapped TUN (it applies f when it returns;
// packets handed back before it returns wait for the next Read). It is
// meant to be set once; setting it again replaces f; nil is ignored (once
// filtered, Read stays so).
func (w *UpDelay) SetReadFilter(f ReadFilter) {
	if f == nil {
		return
	}
	w.read.initOnce.Do(func() { w.read.injected = make(chan []byte, MaxInjected) })
	w.read.filter.Store(&f)
}

// InjectRead queues pkt (an IP packet, owned by the TUN from now on) to be
// returned by a coming Read, ahead of packets the TUN reads later, waking
// a Read that is waiting. It reports false (pkt dropped) when no filter is
// set or MaxInjected packets are already waiting.
func (w *UpDelay) InjectRead(pkt []byte) bool {
	if w.read.filter.Load() == nil {
		return false
	}
	select {
	case w.read.injected <- pkt:
		return true
	default:
		return false
	}
}

// Read reads packets from the TUN for the device, through the read filter
// when one is set. Like every TUN's Read it is called by one goroutine at
// a time.
func (w *UpDelay) Read(bufs [][]byte, sizes []int, offset int) (int, error) {
	if f := w.read.filter.Load(); f != nil {
		return w.read.readFiltered(w.Device, *f, bufs, sizes, offset)
	}
	n, err := w.Device.Read(bufs, sizes, offset)
	if f := w.read.filter.Load(); f != nil {
		// Set while this Read waited: upstream skips a packet of size 0.
		for i := 0; i < n; i++ {
			if sizes[i] > 0 && !(*f)(bufs[i][offset:offset+sizes[i]]) {
				sizes[i] = 0
			}
		}
	}
	return n, err
}

func (h *readHook) readFiltered(inner wgtun.Device, f ReadFilter, bufs [][]byte, sizes []int, offset int) (int, error) {
	if len(bufs) == 0 {
		return 0, nil
	}
	if h.full == nil {
		h.startPump(inner, len(bufs), len(bufs[0]), offset)
	}
	for {
		if h.failed != nil {
			return 0, h.failed
		}
		if n := h.takeInjected(bufs, sizes, offset); n > 0 {
			return n, nil
		}
		if h.cur == nil {
			select {
			case pkt := <-h.injected:
				n := 0
				if put(bufs[0], offset, pkt) {
					sizes[0] = len(pkt)
					n = 1
				}
				n += h.takeInjected(bufs[n:], sizes[n:], offset)
				if n > 0 {
					return n, nil
				}
				continue
			case h.cur = <-h.full:
			}
		}
		n, err := h.copyOut(f, bufs, sizes, offset)
		if n > 0 || err != nil {
			return n, err
		}
	}
}

// takeInjected moves waiting injected packets into bufs without blocking.
func (h *readHook) takeInjected(bufs [][]byte, sizes []int, offset int) int {
	n := 0
	for n < len(bufs) {
		select {
		case pkt := <-h.injected:
			if put(bufs[n], offset, pkt) {
				sizes[n] = len(pkt)
				n++
			}
		default:
			return n
		}
	}
	return n
}

func put(buf []byte, offset int, pkt []byte) bool {
	if len(pkt) == 0 || offset+len(pkt) > len(buf) {
		return false
	}
	copy(buf[offset:], pkt)
	return true
}

// copyOut copies the current batch's packets that pass f into bufs. The
// batch goes back to the pump once fully looked at; its error is returned
// with its last packets.
func (h *readHook) copyOut(f ReadFilter, bufs [][]byte, sizes []int, offset int) (int, error) {
	b := h.cur
	k := 0
	for ; b.next < b.n && k < len(bufs); b.next++ {
		size := b.sizes[b.next]
		if size < 1 {
			continue
		}
		pkt := b.bufs[b.next][offset : offset+size]
		if !f(pkt) || !put(bufs[k], offset, pkt) {
			continue
		}
		sizes[k] = size
		k++
	}
	if b.next < b.n {
		return k, nil
	}
	err := b.err
	h.cur = nil
	h.free <- b // never blocks: two batches, a queue of two
	if err != nil && !errors.Is(err, wgtun.ErrTooManySegments) {
		h.failed = err
	}
	return k, err
}

// startPump starts the goroutine that reads the wrapped TUN, with buffers
// shaped like the device's.
func (h *readHook) startPump(inner wgtun.Device, batch, size, offset int) {
	h.full = make(chan *readBatch, 2)
	h.free = make(chan *readBatch, 2)
	for i := 0; i < 2; i++ {
		b := &readBatch{bufs: make([][]byte, batch), sizes: make([]int, batch)}
		for j := range b.bufs {
			b.bufs[j] = make([]byte, size)
		}
		h.free <- b
	}
	go func() {
		for b := range h.free {
			b.n, b.err = inner.Read(b.bufs, b.sizes, offset)
			b.next = 0
			h.full <- b
			if b.err != nil && !errors.Is(b.err, wgtun.ErrTooManySegments) {
				return
			}
		}
	}()
}
