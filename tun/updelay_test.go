package tun

import (
	"os"
	"testing"
	"time"

	wgtun "golang.zx2c4.com/wireguard/tun"
)

// fakeTUN is a TUN whose events the test drives.
type fakeTUN struct{ events chan wgtun.Event }

func (f *fakeTUN) File() *os.File                         { return nil }
func (f *fakeTUN) Read([][]byte, []int, int) (int, error) { return 0, os.ErrClosed }
func (f *fakeTUN) Write(b [][]byte, _ int) (int, error)   { return len(b), nil }
func (f *fakeTUN) MTU() (int, error)                      { return 1420, nil }
func (f *fakeTUN) Name() (string, error)                  { return "fake0", nil }
func (f *fakeTUN) Events() <-chan wgtun.Event             { return f.events }
func (f *fakeTUN) Close() error                           { close(f.events); return nil }
func (f *fakeTUN) BatchSize() int                         { return 1 }

func TestUpDelayWithholdsLinkEventsAndCallsBack(t *testing.T) {
	f := &fakeTUN{events: make(chan wgtun.Event, 4)}
	w := NewUpDelay(f)
	links := make(chan bool, 4)
	w.SetOnLink(func(up bool) { links <- up })

	f.events <- wgtun.EventUp | wgtun.EventMTUUpdate
	select {
	case up := <-links:
		if !up {
			t.Fatal("got link down, want up")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no link-up callback")
	}
	if ev := <-w.Events(); ev != wgtun.EventMTUUpdate {
		t.Fatalf("upstream saw event %v, want only the MTU update", ev)
	}
	f.events <- wgtun.EventUp // no change: no callback
	f.events <- wgtun.EventDown
	if up := <-links; up {
		t.Fatal("got link up, want down")
	}
	if w.LinkUp() {
		t.Fatal("LinkUp disagrees with the last event")
	}
	w.Close()
	if _, ok := <-w.Events(); ok {
		t.Fatal("event channel still open after Close")
	}
}

func TestUpDelayLateCallbackSeesEarlierUp(t *testing.T) {
	f := &fakeTUN{events: make(chan wgtun.Event, 1)}
	w := NewUpDelay(f)
	defer w.Close()
	f.events <- wgtun.EventUp
	deadline := time.Now().Add(5 * time.Second)
	for !w.LinkUp() && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	called := false
	w.SetOnLink(func(up bool) { called = up })
	if !called {
		t.Fatal("SetOnLink after the link came up did not report it")
	}
}
