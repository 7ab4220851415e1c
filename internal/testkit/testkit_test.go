package testkit

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/wghooks/wghooks/device"
)

func TestKeypair(t *testing.T) {
	k := NewKeypair()
	if k.IsZero() || k.Pub == ([32]byte{}) {
		t.Fatal("zero key pair")
	}
	if again := KeypairFrom(k.Priv); again != k {
		t.Fatalf("KeypairFrom(priv) = %v, want %v", again, k)
	}
	if got := UAPI("a", "1", "b", "2"); got != "a=1\nb=2\n" {
		t.Fatalf("UAPI = %q", got)
	}
}

func TestLogWait(t *testing.T) {
	CheckLeaks(t)
	l := NewLog(t, "test")
	go func() {
		for i := 0; i < 3; i++ {
			l.Logf("line %d", i)
		}
	}()
	if line := l.WaitFor(t, "line 2", 5*time.Second); !strings.HasSuffix(line, "line 2") {
		t.Fatalf("WaitFor = %q", line)
	}
	if n := l.Count("line"); n != 3 {
		t.Fatalf("Count = %d, want 3", n)
	}
	var w Log
	fmt.Fprintf(&w, "out 1\nout")
	fmt.Fprintf(&w, " 2\npart")
	if got := w.String(); got != "out 1\nout 2\npart" || w.Count("out") != 2 {
		t.Fatalf("written log = %q, %d lines with out", got, w.Count("out"))
	}
	if _, ok := l.Wait("never", 20*time.Millisecond); ok {
		t.Fatal("Wait found a line never written")
	}
}

func TestPoll(t *testing.T) {
	n := 0
	if !Poll(time.Second, func() bool { n++; return n == 3 }) {
		t.Fatal("Poll gave up on a condition that came true")
	}
	if Poll(30*time.Millisecond, func() bool { return false }) {
		t.Fatal("Poll reported a condition that never held")
	}
}

// TestNodes runs the rig itself: wghooks to plain upstream over a counting
// bind, ICMP, UDP echo, HTTP and a pinger with no loss.
func TestNodes(t *testing.T) {
	CheckLeaks(t)
	a, da := NewWghooks(t, "198.18.250.1", device.Config{})
	cb := NewCountingBind(nil)
	b, db := NewUpstream(t, "198.18.250.2", cb)
	AddPeer(t, da, b, true)
	AddPeer(t, db, a, true)
	if _, err := a.PingUntil(b.Addr, time.Second, 15*time.Second); err != nil {
		t.Fatal(err)
	}
	if cb.InitRecv.Load() == 0 || cb.InitSent.Load() != 0 {
		t.Errorf("upstream's bind counted %d initiations received, %d sent; want some received, none sent", cb.InitRecv.Load(), cb.InitSent.Load())
	}
	if got := PeerValue(t, da, b.Key.Pub, "endpoint"); got != LoopbackAddrPort(b.Port).String() {
		t.Errorf("endpoint = %q", got)
	}
	ServeEcho(t, b)
	if err := a.Echo(b.Addr, 5*time.Second); err != nil {
		t.Errorf("UDP echo: %v", err)
	}
	ServeHTTP(t, a, "hi")
	if body, err := b.Get(a.Addr, 10*time.Second); err != nil || body != "hi" {
		t.Errorf("HTTP = %q, %v", body, err)
	}
	p := NewPinger(t, a, b.Addr)
	last := p.Send()
	Eventually(t, 5*time.Second, "the last echo answered", func() bool { return p.Answered(last) })
	start := time.Now()
	p.Every(20 * time.Millisecond)
	Eventually(t, 5*time.Second, "an echo sent by Every answered", func() bool {
		_, _, ok := p.FirstAnswer(start, 0)
		return ok
	})
	p.Stop()
	if lost, sent := p.Lost(0); lost > 1 || sent < 2 { // the last may be in flight at Stop
		t.Errorf("lost %d of %d echoes", lost, sent)
	}
	if port, err := ReadListenPort(db); err != nil || port != b.Port {
		t.Errorf("ListenPort = %d, %v; want %d", port, err, b.Port)
	}
}
