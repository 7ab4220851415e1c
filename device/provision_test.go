package device

import (
	"context"
	"encoding/hex"
	"net/netip"
	"strings"
	"testing"
	"time"

	"golang.zx2c4.com/wireguard/tai64n"
	"golang.zx2c4.com/wireguard/tun/tuntest"

	"wghooks/hooks"
)

func TestJITConfigDefaults(t *testing.T) {
	c := JITConfig{}.withDefaults()
	if c.LookupTimeout != 3*time.Second || c.NegativeTTL != time.Minute || c.IdleTimeout != 10*time.Minute ||
		c.RevalidateInterval != 5*time.Minute || c.MaxPeers != 16384 || c.MaxLookups != 64 || c.HoldTimeout != 4*time.Second || c.RestoreDeadline != 2*time.Minute {
		t.Fatalf("defaults: %+v", c)
	}
	off := JITConfig{IdleTimeout: -1, RevalidateInterval: -1}.withDefaults()
	if off.IdleTimeout >= 0 || off.RevalidateInterval >= 0 {
		t.Fatalf("negative durations must stay off: %+v", off)
	}
	j := &jit{cfg: JITConfig{IdleTimeout: time.Second, NegativeTTL: time.Hour, RevalidateInterval: -1}.withDefaults()}
	if got := j.sweepInterval(); got != 250*time.Millisecond {
		t.Fatalf("sweepInterval = %v, want a quarter of the idle time", got)
	}
}

func TestPeerLines(t *testing.T) {
	key := noiseKey{1, 2, 3}
	got := peerLines(key, hooks.PeerConfig{
		AllowedIPs:          []netip.Prefix{netip.MustParsePrefix("198.18.0.7/24"), netip.MustParsePrefix("fd00::1/128")},
		PresharedKey:        [32]byte{9},
		PersistentKeepalive: 25 * time.Second,
		Endpoint:            netip.MustParseAddrPort("198.18.1.1:51820"),
	})
	want := "public_key=" + hex.EncodeToString(key[:]) + "\n" +
		"replace_allowed_ips=true\n" +
		"preshared_key=09" + strings.Repeat("0", 62) + "\n" +
		"persistent_keepalive_interval=25\n" +
		"endpoint=198.18.1.1:51820\n" +
		"allowed_ip=198.18.0.0/24\n" +
		"allowed_ip=fd00::1/128\n" +
		"wghooks_jit=true\n"
	if got != want {
		t.Fatalf("peerLines:\n%s\nwant:\n%s", got, want)
	}
}

func TestWatchSet(t *testing.T) {
	j := &jit{kick: make(chan struct{}, 1)}
	j.watch.m = map[uint32]decodeJob{}
	now := time.Now()
	pkt := make([]byte, 148)
	pkt[0], pkt[4] = 1, 7 // sender 7
	src := netip.MustParseAddrPort("127.0.0.1:9")
	j.watchInitiation(pkt, nil, src, now)
	select {
	case <-j.kick:
	default:
		t.Fatal("first watched initiation did not kick housekeeping")
	}
	pkt[4] = 8
	j.watchInitiation(pkt, nil, src, now)
	j.watch.answered(7)
	due, more := j.watch.unanswered(now.Add(watchAfter))
	if len(due) != 1 || due[0].pkt[4] != 8 || !due[0].watched || more {
		t.Fatalf("unanswered = %d jobs (more %v), want only sender 8", len(due), more)
	}
	ch := j.watch.await(9)
	j.watch.answered(9)
	select {
	case <-ch:
	default:
		t.Fatal("await not released by the answer")
	}
}

func TestHoldKeepsNewest(t *testing.T) {
	j := &jit{held: map[noiseKey]heldInit{}}
	k := noiseKey{5}
	older, newer := tai64n.Now(), tai64n.Now()
	newer[11]++
	j.holdLocked(k, decodeJob{src: netip.MustParseAddrPort("127.0.0.1:1")}, newer)
	if j.holdLocked(k, decodeJob{src: netip.MustParseAddrPort("127.0.0.1:2")}, older) {
		t.Error("holdLocked says it kept an older initiation")
	}
	if j.held[k].job.src.Port() != 1 {
		t.Fatal("an older initiation replaced a newer one")
	}
	newer[11]++
	if !j.holdLocked(k, decodeJob{src: netip.MustParseAddrPort("127.0.0.1:3")}, newer) {
		t.Error("holdLocked says it dropped a newer initiation")
	}
	if j.held[k].job.src.Port() != 3 {
		t.Fatal("a newer initiation did not replace the held one")
	}
}

// TestJITStateFollowsConfiguration: peers marked wghooks_jit are tracked,
// configuring one by hand makes it static, removing it forgets it, and
// readActivity reads its counters from upstream.
func TestJITStateFollowsConfiguration(t *testing.T) {
	prov := hooks.ProviderFunc(func(context.Context, hooks.PublicKey) (hooks.PeerConfig, error) {
		return hooks.PeerConfig{}, hooks.ErrUnknownPeer
	})
	d, err := New(tuntest.NewChannelTUN().TUN(), Config{JIT: JITConfig{Provider: prov}})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	priv := [32]byte{1}
	if err := d.IpcSet("private_key=" + hex.EncodeToString(priv[:]) + "\n"); err != nil {
		t.Fatal(err)
	}
	if d.identity.Load() == nil {
		t.Fatal("private key not seen by the device identity")
	}
	k := noiseKey{7, 7, 7}
	hk := hex.EncodeToString(k[:])
	if err := d.IpcSet(peerLines(k, hooks.PeerConfig{AllowedIPs: []netip.Prefix{netip.MustParsePrefix("198.18.0.9/32")}})); err != nil {
		t.Fatal(err)
	}
	if !d.jit.isJIT(k) {
		t.Fatal("peer installed with wghooks_jit=true is not tracked")
	}
	get, _ := d.IpcGet()
	if !strings.Contains(get, "wghooks_jit=true") {
		t.Fatalf("get reply lacks wghooks_jit:\n%s", get)
	}
	acts, err := d.jit.readActivity()
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := acts[k]; !ok || len(acts) != 1 {
		t.Fatalf("readActivity = %v, want the one JIT peer", acts)
	}
	if err := d.IpcSet("public_key=" + hk + "\npersistent_keepalive_interval=0\n"); err != nil {
		t.Fatal(err)
	}
	if d.jit.isJIT(k) {
		t.Fatal("peer configured by hand is still evictable")
	}
	if err := d.IpcSet("public_key=" + hk + "\nwghooks_jit=true\n"); err != nil {
		t.Fatal(err)
	}
	if err := d.IpcSet("public_key=" + hk + "\nremove=true\n"); err != nil {
		t.Fatal(err)
	}
	if d.jit.isJIT(k) || !d.jit.removedSince(k, time.Now().Add(-time.Minute)) {
		t.Fatal("removed peer not forgotten")
	}
	if err := d.IpcSet("wghooks_jit_forget=zz\n"); err == nil {
		t.Fatal("wghooks_jit_forget accepted a bad key")
	}
	d.jit.setNegative(k, time.Hour)
	if err := d.IpcSet("wghooks_jit_forget=" + hk + "\n"); err != nil {
		t.Fatal(err)
	}
	d.jit.mu.Lock()
	_, ok := d.jit.negative[k]
	d.jit.mu.Unlock()
	if ok {
		t.Fatal("wghooks_jit_forget kept the negative entry")
	}
}
