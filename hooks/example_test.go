package hooks_test

import (
	"context"
	"errors"
	"fmt"
	"net/netip"

	"github.com/wghooks/wghooks/hooks"
)

// A provider written as a Go function: a map from public key to peer, and
// ErrUnknownPeer for any other key (the device then refuses the key for
// a while without asking again). Give it to a device as
// device.Config{JIT: device.JITConfig{Provider: provider}}; see
// device.ExampleJITConfig for a gateway serving a client through it.
func ExampleProviderFunc() {
	alice, _ := hooks.ParsePublicKey("xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=")
	peers := map[hooks.PublicKey]hooks.PeerConfig{
		alice: {AllowedIPs: []netip.Prefix{netip.MustParsePrefix("198.18.0.2/32")}},
	}
	provider := hooks.ProviderFunc(func(ctx context.Context, key hooks.PublicKey) (hooks.PeerConfig, error) {
		pc, ok := peers[key]
		if !ok {
			return hooks.PeerConfig{}, hooks.ErrUnknownPeer
		}
		return pc, nil
	})

	pc, err := provider.LookupPeer(context.Background(), alice)
	fmt.Println(pc.AllowedIPs, err)
	_, err = provider.LookupPeer(context.Background(), hooks.PublicKey{1})
	fmt.Println(errors.Is(err, hooks.ErrUnknownPeer))
	// Output:
	// [198.18.0.2/32] <nil>
	// true
}
