package jit

import (
	"encoding/hex"
	"net/netip"
	"strings"
	"testing"
	"time"

	"golang.zx2c4.com/wireguard/tai64n"

	"github.com/wghooks/wghooks/device/feature"
	"github.com/wghooks/wghooks/device/feature/featuretest"
	"github.com/wghooks/wghooks/hooks"
	"github.com/wghooks/wghooks/uapi"
)

func TestConfigDefaults(t *testing.T) {
	c := Config{}.withDefaults()
	if c.LookupTimeout != 3*time.Second || c.NegativeTTL != time.Minute || c.IdleTimeout != 10*time.Minute ||
		c.RevalidateInterval != 5*time.Minute || c.MaxPeers != 16384 || c.MaxLookups != 64 || c.HoldTimeout != 4*time.Second || c.RestoreDeadline != 2*time.Minute {
		t.Fatalf("defaults: %+v", c)
	}
	off := Config{IdleTimeout: -1, RevalidateInterval: -1}.withDefaults()
	if off.IdleTimeout >= 0 || off.RevalidateInterval >= 0 {
		t.Fatalf("negative durations must stay off: %+v", off)
	}
	j := &JIT{cfg: Config{IdleTimeout: time.Second, NegativeTTL: time.Hour, RevalidateInterval: -1}.withDefaults()}
	if got := j.sweepInterval(); got != 250*time.Millisecond {
		t.Fatalf("sweepInterval = %v, want a quarter of the idle time", got)
	}
}

func TestInstallConfig(t *testing.T) {
	key := feature.Key{1, 2, 3}
	pc := InstallConfig(key, hooks.PeerConfig{
		AllowedIPs:          []netip.Prefix{netip.MustParsePrefix("198.18.0.7/24"), netip.MustParsePrefix("fd00::1/128")},
		PresharedKey:        [32]byte{9},
		PersistentKeepalive: 25 * time.Second,
		Endpoint:            netip.MustParseAddrPort("198.18.1.1:51820"),
	})
	got := feature.Config{Peers: []feature.PeerConfig{pc}}.UAPI()
	want := "public_key=" + hex.EncodeToString(key[:]) + "\n" +
		"replace_allowed_ips=true\n" +
		"preshared_key=09" + strings.Repeat("0", 62) + "\n" +
		"persistent_keepalive_interval=25\n" +
		"endpoint=198.18.1.1:51820\n" +
		"allowed_ip=198.18.0.0/24\n" +
		"allowed_ip=fd00::1/128\n"
	if got != want {
		t.Fatalf("InstallConfig:\n%s\nwant:\n%s", got, want)
	}
}

func TestWatchSet(t *testing.T) {
	j := &JIT{kick: make(chan struct{}, 1)}
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
	j := &JIT{held: map[feature.Key]heldInit{}}
	k := feature.Key{5}
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

// TestStateFollowsConfiguration: a peer the feature installs is just in
// time; another feature's change (the restart restoring an endpoint)
// leaves it so; the operator configuring it without wghooks_jit makes it
// static; wghooks_jit=true marks it again; removing it forgets it; the
// operator's routes are pinned, the feature's own are not;
// wghooks_jit_forget clears the negative cache; activityOf reads the
// peer's counters from a view.
func TestStateFollowsConfiguration(t *testing.T) {
	h, _ := featuretest.New(t)
	j := newJIT(h, Config{})
	t.Cleanup(j.Close)
	k := feature.Key{7, 7, 7}
	hk := hex.EncodeToString(k[:])
	if len(new(JIT).Keys()) != 2 {
		t.Fatal("a zero value does not list the keys")
	}
	keys := map[string]feature.ExtKey{}
	ext := &uapi.Extensions{Device: map[string]func(string) error{}, Peer: map[string]func(string) error{}}
	for _, x := range j.Keys() {
		keys[x.Name] = x
		if x.Peer {
			ext.Peer[x.Name] = x.Validate
		} else {
			ext.Device[x.Name] = x.Validate
		}
	}
	change := func(origin string, lines ...string) {
		t.Helper()
		set, err := uapi.ParseSet(lines, ext)
		if err != nil {
			t.Fatal(err)
		}
		j.Configured(feature.Change{Set: set, Origin: origin})
	}

	// The install path: Configure (the core then holds the peer), then
	// the mark.
	h.OnConfigure = func(feature.Config) { h.AddPeer(k) }
	if err := j.applyAnswer(k, hooks.PeerConfig{AllowedIPs: []netip.Prefix{netip.MustParsePrefix("198.18.0.9/32")}}); err != nil {
		t.Fatal(err)
	}
	h.OnConfigure = nil
	if len(h.Configs) != 1 || strings.Contains(h.Configs[0].UAPI(), "wghooks_jit") {
		t.Fatalf("install configured %+v, want one typed change without wghooks_jit", h.Configs)
	}
	change("jit", "public_key="+hk, "replace_allowed_ips=true", "allowed_ip=198.18.0.9/32")
	if !j.isJIT(k) {
		t.Fatal("installed peer is not tracked")
	}
	if l := j.PeerGetLines(k); len(l) != 1 || l[0].String() != "wghooks_jit=true" {
		t.Fatalf("PeerGetLines = %v", l)
	}
	if err := j.static.check(feature.Key{8}, []netip.Prefix{netip.MustParsePrefix("198.18.0.9/32")}); err != nil {
		t.Fatalf("the feature's own install pinned its routes: %v", err)
	}
	acts := activityOf(&feature.View{Peers: []feature.PeerView{{PublicKey: k, Rx: 5, Tx: 6}, {PublicKey: feature.Key{9}}}}, j.peers)
	if a, ok := acts[k]; !ok || len(acts) != 1 || a.rx != 5 || a.tx != 6 {
		t.Fatalf("activityOf = %v, want the one JIT peer", acts)
	}

	change("restart", "public_key="+hk, "update_only=true", "endpoint=198.18.1.1:51820")
	if !j.isJIT(k) {
		t.Fatal("another feature's change made the peer static")
	}
	change("", "public_key="+hk, "persistent_keepalive_interval=0", "allowed_ip=198.18.0.9/32")
	if j.isJIT(k) {
		t.Fatal("peer configured by the operator is still evictable")
	}
	if err := j.static.check(feature.Key{8}, []netip.Prefix{netip.MustParsePrefix("198.18.0.9/32")}); err == nil {
		t.Fatal("the operator's route is not pinned")
	}
	if err := keys["wghooks_jit"].ApplyPeer(k, "true"); err != nil {
		t.Fatal(err)
	}
	change("", "public_key="+hk, "wghooks_jit=true")
	if !j.isJIT(k) {
		t.Fatal("wghooks_jit=true did not mark the peer")
	}
	change("jit", "public_key="+hk, "remove=true")
	if j.isJIT(k) || !j.removedSince(k, time.Now().Add(-time.Minute)) {
		t.Fatal("removed peer not forgotten")
	}
	if keys["wghooks_jit"].Validate("yes") == nil || keys["wghooks_jit_forget"].Validate("zz") == nil {
		t.Fatal("a bad value validated")
	}
	j.setNegative(k, time.Hour)
	if err := keys["wghooks_jit_forget"].ApplyDevice(hk); err != nil {
		t.Fatal(err)
	}
	j.mu.Lock()
	_, ok := j.negative[k]
	j.mu.Unlock()
	if ok {
		t.Fatal("wghooks_jit_forget kept the negative entry")
	}
}
