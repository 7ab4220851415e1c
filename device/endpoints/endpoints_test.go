package endpoints

import (
	"strings"
	"testing"

	"github.com/wghooks/wghooks/device/feature"
	"github.com/wghooks/wghooks/device/feature/featuretest"
)

// TestKeysOnZeroValue: the core lists the keys' docs from a zero value,
// and the validators are the ones the keys always had.
func TestKeysOnZeroValue(t *testing.T) {
	keys := new(Endpoints).Keys()
	type scoped struct {
		name string
		peer bool
	}
	got := map[scoped]feature.ExtKey{}
	for _, k := range keys {
		if k.Doc == "" || k.Validate == nil {
			t.Errorf("key %s has no doc or no validator", k.Name)
		}
		if (k.ApplyPeer != nil) != k.Peer || (k.ApplyDevice != nil) == k.Peer {
			t.Errorf("key %s (peer %v) has the wrong apply", k.Name, k.Peer)
		}
		got[scoped{k.Name, k.Peer}] = k
	}
	ep, ok := got[scoped{"wghooks_endpoint", true}]
	if !ok || len(keys) != 3 {
		t.Fatalf("keys = %v, want wghooks_endpoint (peer) and wghooks_reset_source (device and peer)", keys)
	}
	if err := ep.Validate(""); err != nil {
		t.Errorf("wghooks_endpoint rejects the empty value (remove): %v", err)
	}
	if err := ep.Validate("vpn.example.com"); err == nil || !strings.Contains(err.Error(), "failed to parse endpoint") {
		t.Errorf("wghooks_endpoint accepts a host without port: %v", err)
	}
	for _, peer := range []bool{false, true} {
		rs, ok := got[scoped{"wghooks_reset_source", peer}]
		if !ok {
			t.Fatalf("no wghooks_reset_source key (peer %v)", peer)
		}
		if rs.Validate("true") != nil || rs.Validate("false") == nil {
			t.Errorf("wghooks_reset_source (peer %v) accepts other than exactly true", peer)
		}
	}
}

// TestNewRejectsBadHost: a configured hostname that does not parse fails
// New, which then has started nothing for the core to close.
func TestNewRejectsBadHost(t *testing.T) {
	h, _ := featuretest.New(t)
	e, err := New(h, Config{Hosts: map[feature.Key]string{{1}: "vpn.example.com"}})
	if err == nil || e != nil || !strings.Contains(err.Error(), "failed to configure endpoint of peer(") {
		t.Fatalf("New = %v, %v; want no feature and an error naming the peer", e, err)
	}
}
