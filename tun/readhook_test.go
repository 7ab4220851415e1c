package tun

import (
	"bytes"
	"os"
	"sync"
	"testing"
	"time"

	wgtun "golang.zx2c4.com/wireguard/tun"
)

// readHookTUN is a TUN whose Read returns the packets the test queues, one
// per call, and os.ErrClosed once closed.
type readHookTUN struct {
	fakeTUN
	pkts      chan []byte
	closeOnce sync.Once
	closed    chan struct{}
}

func newReadHookTUN() *readHookTUN {
	return &readHookTUN{
		fakeTUN: fakeTUN{events: make(chan wgtun.Event, 1)},
		pkts:    make(chan []byte, 16),
		closed:  make(chan struct{}),
	}
}

func (f *readHookTUN) Read(bufs [][]byte, sizes []int, offset int) (int, error) {
	select {
	case p := <-f.pkts:
		sizes[0] = copy(bufs[0][offset:], p)
		return 1, nil
	case <-f.closed:
		return 0, os.ErrClosed
	}
}

func (f *readHookTUN) Close() error {
	f.closeOnce.Do(func() { close(f.closed); close(f.events) })
	return nil
}

// readHookHolder is a filter holding packets that start with "hold".
type readHookHolder struct {
	mu   sync.Mutex
	held [][]byte
}

func (h *readHookHolder) filter(pkt []byte) bool {
	if !bytes.HasPrefix(pkt, []byte("hold")) {
		return true
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.held = append(h.held, append([]byte(nil), pkt...))
	return false
}

func (h *readHookHolder) first(t *testing.T) []byte {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		h.mu.Lock()
		if len(h.held) > 0 {
			p := h.held[0]
			h.mu.Unlock()
			return p
		}
		h.mu.Unlock()
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatal("nothing held")
	return nil
}

// readHookReader runs a device-like reader: Read in a loop, every packet
// sent on out, until Read fails.
func readHookReader(w *UpDelay, out chan<- []byte) <-chan error {
	done := make(chan error, 1)
	go func() {
		const offset = 16
		bufs := [][]byte{make([]byte, 128), make([]byte, 128)}
		sizes := make([]int, len(bufs))
		for {
			n, err := w.Read(bufs, sizes, offset)
			for i := 0; i < n; i++ {
				if sizes[i] < 1 {
					continue // as upstream does
				}
				out <- append([]byte(nil), bufs[i][offset:offset+sizes[i]]...)
			}
			if err != nil {
				done <- err
				return
			}
		}
	}()
	return done
}

func readHookNext(t *testing.T, out <-chan []byte) []byte {
	t.Helper()
	select {
	case p := <-out:
		return p
	case <-time.After(5 * time.Second):
		t.Fatal("Read returned nothing")
		return nil
	}
}

func TestReadHookFiltersAndInjects(t *testing.T) {
	f := newReadHookTUN()
	w := NewUpDelay(f)
	if w.InjectRead([]byte("x")) {
		t.Fatal("InjectRead accepted a packet without a filter")
	}
	h := &readHookHolder{}
	w.SetReadFilter(h.filter)
	out := make(chan []byte, 16)
	done := readHookReader(w, out)

	f.pkts <- []byte("one")
	if p := readHookNext(t, out); string(p) != "one" {
		t.Fatalf("read %q, want %q", p, "one")
	}
	f.pkts <- []byte("hold me")
	f.pkts <- []byte("two")
	if p := readHookNext(t, out); string(p) != "two" {
		t.Fatalf("read %q, want %q (the held packet skipped)", p, "two")
	}
	// The reader is now blocked waiting for the TUN: an injected packet
	// must wake it.
	if !w.InjectRead(h.first(t)) {
		t.Fatal("InjectRead refused a packet")
	}
	if p := readHookNext(t, out); string(p) != "hold me" {
		t.Fatalf("read %q, want the injected %q", p, "hold me")
	}
	if w.InjectRead(make([]byte, 200)) {
		// Accepted, but too large for the device's buffers: dropped by
		// Read, never delivered truncated.
		f.pkts <- []byte("three")
		if p := readHookNext(t, out); string(p) != "three" {
			t.Fatalf("read %q, want %q", p, "three")
		}
	}

	w.Close()
	select {
	case err := <-done:
		if err != os.ErrClosed {
			t.Fatalf("Read failed with %v, want os.ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Read did not fail after Close")
	}
	// Later Reads keep failing, without blocking.
	if _, err := w.Read([][]byte{make([]byte, 64)}, []int{0}, 0); err == nil {
		t.Fatal("Read after failure succeeded")
	}
}

func TestReadHookInjectedQueueBounded(t *testing.T) {
	f := newReadHookTUN()
	w := NewUpDelay(f)
	defer w.Close()
	w.SetReadFilter(func([]byte) bool { return true })
	n := 0
	for i := 0; i < 2*MaxInjected; i++ {
		if w.InjectRead([]byte{byte(i)}) {
			n++
		}
	}
	if n != MaxInjected {
		t.Fatalf("InjectRead queued %d packets, want at most %d", n, MaxInjected)
	}
}

func TestReadHookWithoutFilterIsTheTUNsRead(t *testing.T) {
	f := newReadHookTUN()
	w := NewUpDelay(f)
	defer w.Close()
	f.pkts <- []byte("plain")
	bufs := [][]byte{make([]byte, 64)}
	sizes := []int{0}
	n, err := w.Read(bufs, sizes, 4)
	if err != nil || n != 1 || string(bufs[0][4:4+sizes[0]]) != "plain" {
		t.Fatalf("Read = %d, %v, %q", n, err, bufs[0][4:4+sizes[0]])
	}
}

// TestReadHookSetWhileReading: a filter set while the device's reader
// already waits in the TUN applies to what that Read returns, and a packet
// it held comes back on the next Read.
func TestReadHookSetWhileReading(t *testing.T) {
	f := newReadHookTUN()
	w := NewUpDelay(f)
	out := make(chan []byte, 16)
	done := readHookReader(w, out) // waits in the TUN's Read, unfiltered
	time.Sleep(10 * time.Millisecond)
	h := &readHookHolder{}
	w.SetReadFilter(h.filter)
	f.pkts <- []byte("hold first")
	if !w.InjectRead(h.first(t)) {
		t.Fatal("InjectRead refused a packet")
	}
	if p := readHookNext(t, out); string(p) != "hold first" {
		t.Fatalf("read %q, want the held packet handed back", p)
	}
	w.Close()
	<-done
}
