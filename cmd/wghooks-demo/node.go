package main

import (
	"os"
	"path/filepath"
	"strings"

	wgconn "golang.zx2c4.com/wireguard/conn"
	wgdevice "golang.zx2c4.com/wireguard/device"

	"github.com/wghooks/wghooks/device"
	"github.com/wghooks/wghooks/hooks/sqlstore"
	"github.com/wghooks/wghooks/internal/testkit"
)

// node is one demo host: a wghooks device on netstack, listening on
// loopback UDP (the test rig's node, which also pings, serves and fetches
// through the tunnel).
type node struct {
	*testkit.Node
	name string
	dev  *device.Device
}

// startNode brings a device up with key (zero: a new one) on
// 127.0.0.1:port (0: any).
func startNode(name, addr string, key testkit.Keypair, port uint16, cfg device.Config) (*node, error) {
	n, d, err := testkit.StartWghooks(addr, key, port, cfg)
	if err != nil {
		return nil, err
	}
	return &node{Node: n, name: name, dev: d}, nil
}

// addPeer makes other a peer of n; withEndpoint tells n where other is.
func (n *node) addPeer(other *testkit.Node, withEndpoint bool, extra ...string) error {
	return n.dev.IpcSet(testkit.PeerConf(other, withEndpoint) + strings.Join(extra, ""))
}

// upstreamClient is a plain upstream wireguard-go device on netstack, for
// contrast.
type upstreamClient struct {
	*testkit.Node
	dev *wgdevice.Device
}

// startUpstream brings a silent upstream device up with key on
// 127.0.0.1:port (0: any).
func startUpstream(addr string, key testkit.Keypair, port uint16) (*upstreamClient, error) {
	return startUpstreamOn(addr, key, port, nil)
}

// startUpstreamOn is startUpstream over bind (nil: upstream's default).
func startUpstreamOn(addr string, key testkit.Keypair, port uint16, bind wgconn.Bind) (*upstreamClient, error) {
	n, d, err := testkit.StartUpstream(addr, key, port, bind, wgdevice.NewLogger(wgdevice.LogLevelSilent, ""))
	if err != nil {
		return nil, err
	}
	return &upstreamClient{Node: n, dev: d}, nil
}

// endpointInUse reads the peer's endpoint from the client's get reply, as
// `wg show` would print it.
func endpointInUse(client *node, peer *testkit.Node) string {
	get, err := client.dev.IpcGet()
	if err != nil {
		return "?"
	}
	if ep := testkit.PeerValueOf(get, peer.Key.Pub, "endpoint"); ep != "" {
		return ep
	}
	return "(none)"
}

// openTempStore makes a directory for a scene's files with a SQLite peer
// store in it (peers.db); done closes the store and removes the directory.
func openTempStore(scene string) (dir string, store *sqlstore.Store, done func(), err error) {
	dir, err = os.MkdirTemp("", "wghooks-demo-"+scene+"-")
	if err != nil {
		return "", nil, nil, err
	}
	store, err = sqlstore.Open(filepath.Join(dir, "peers.db"))
	if err != nil {
		os.RemoveAll(dir)
		return "", nil, nil, err
	}
	return dir, store, func() { store.Close(); os.RemoveAll(dir) }, nil
}
