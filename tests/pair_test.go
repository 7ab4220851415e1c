package tests

import (
	"testing"
	"time"

	"github.com/wghooks/wghooks/device"
	"github.com/wghooks/wghooks/internal/testkit"
)

func TestPairPingAndHTTP(t *testing.T) {
	testkit.CheckLeaks(t)
	a, da := testkit.NewWghooks(t, "198.18.0.1", device.Config{})
	b, db := testkit.NewWghooks(t, "198.18.0.2", device.Config{})
	testkit.AddPeer(t, da, b, true)
	testkit.AddPeer(t, db, a, true)

	// An echo may be lost while netstack settles under -race; one answer
	// in ten tries proves the tunnel carries ICMP.
	var err error
	for i := 0; i < 10; i++ {
		if err = a.Ping(b.Addr, time.Second); err == nil {
			break
		}
	}
	if err != nil {
		t.Fatalf("ping a→b through the tunnel: %v", err)
	}
	testkit.ServeHTTP(t, b, "hello through wghooks")
	got, err := a.Get(b.Addr, 10*time.Second)
	if err != nil {
		t.Fatalf("HTTP a→b: %v", err)
	}
	if got != "hello through wghooks" {
		t.Fatalf("HTTP body = %q", got)
	}
	if !da.HasPeer(b.Key.Pub) || len(da.Peers()) != 1 {
		t.Fatalf("device's peer view = %v, want exactly b", da.Peers())
	}
}

func TestInteropWithUpstream(t *testing.T) {
	testkit.CheckLeaks(t)
	ours, d := testkit.NewWghooks(t, "198.18.1.1", device.Config{})
	theirs, u := testkit.NewUpstream(t, "198.18.1.2", nil)
	testkit.AddPeer(t, d, theirs, true)
	testkit.AddPeer(t, u, ours, true)

	testkit.ServeHTTP(t, theirs, "upstream says hi")
	got, err := ours.Get(theirs.Addr, 10*time.Second)
	if err != nil || got != "upstream says hi" {
		t.Fatalf("wghooks→upstream HTTP = %q, %v", got, err)
	}
	testkit.ServeHTTP(t, ours, "wghooks says hi")
	got, err = theirs.Get(ours.Addr, 10*time.Second)
	if err != nil || got != "wghooks says hi" {
		t.Fatalf("upstream→wghooks HTTP = %q, %v", got, err)
	}
}
