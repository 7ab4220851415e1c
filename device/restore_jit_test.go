package device

import (
	"fmt"
	"testing"
	"time"

	wgdevice "golang.zx2c4.com/wireguard/device"
)

// A file written before the "jit" flag existed parses, every entry
// static, so planJITRestore finds nothing in it.
func TestStateFileWithoutJITFlagLoads(t *testing.T) {
	k := encodeKey(wgdevice.NoisePublicKey{1})
	old := fmt.Sprintf(`{"version":1,"public_key":%q,"written":"2026-05-22T21:04:24Z","peers":[{"public_key":%q,"endpoint":"127.0.0.1:9","last_handshake":"2026-05-22T21:03:58Z"}]}`, k, k)
	f, err := parseState([]byte(old))
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Peers) != 1 || f.Peers[0].JIT {
		t.Fatalf("peers %+v, want one static entry", f.Peers)
	}
	items, tooOld, overCap := planJITRestore(f, func(wgdevice.NoisePublicKey) bool { return false }, f.Written, time.Hour, 10)
	if len(items) != 0 || tooOld != 0 || overCap != 0 {
		t.Errorf("planJITRestore on an old file: %v, %d, %d; want nothing", items, tooOld, overCap)
	}
}

func TestPlanJITRestore(t *testing.T) {
	now := time.Date(2026, 5, 22, 12, 0, 0, 0, time.UTC)
	key := func(b byte) wgdevice.NoisePublicKey { return wgdevice.NoisePublicKey{b} }
	entry := func(b byte, jit bool, ago time.Duration) statePeer {
		e := statePeer{PublicKey: encodeKey(key(b)), Endpoint: fmt.Sprintf("[::ffff:127.0.0.1]:%d", 1000+int(b)), JIT: jit}
		if ago >= 0 {
			e.LastHandshake = now.Add(-ago)
		}
		return e
	}
	f := &stateFile{Peers: []statePeer{
		entry(1, true, 3*time.Minute),
		entry(2, false, time.Minute),   // static: state.go's business
		entry(3, true, 25*time.Hour),   // older than max age
		entry(4, true, -1),             // never handshook
		entry(5, true, time.Minute),    // most recent
		entry(6, true, 2*time.Minute),  // installed already
		entry(7, true, 10*time.Minute), // over the cap
		entry(5, true, time.Minute),    // duplicate
	}}
	installed := func(pk wgdevice.NoisePublicKey) bool { return pk == key(6) }
	items, tooOld, overCap := planJITRestore(f, installed, now, 24*time.Hour, 2)
	if len(items) != 2 || items[0].pk != key(5) || items[1].pk != key(1) {
		t.Fatalf("items %+v, want keys 5 then 1", items)
	}
	if items[0].endpoint.String() != "127.0.0.1:1005" {
		t.Errorf("endpoint %v, want the unmapped 127.0.0.1:1005", items[0].endpoint)
	}
	if tooOld != 2 || overCap != 1 {
		t.Errorf("tooOld %d, overCap %d; want 2 and 1", tooOld, overCap)
	}
}
