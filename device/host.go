package device

import (
	"fmt"
	"strings"

	wgdevice "golang.zx2c4.com/wireguard/device"

	"github.com/wghooks/wghooks/conn"
	"github.com/wghooks/wghooks/device/feature"
	"github.com/wghooks/wghooks/tun"
	"github.com/wghooks/wghooks/uapi"
)

// host is the Device as its features see it (feature.Host): the narrow
// view that keeps the features from reaching into the core or each other.
type host struct{ d *Device }

var _ feature.Host = host{}

func (h host) Verbosef(format string, args ...any) { h.d.log.Verbosef(format, args...) }
func (h host) Errorf(format string, args ...any)   { h.d.log.Errorf(format, args...) }
func (h host) Counters() *feature.Counters         { return &h.d.stats }
func (h host) HasPeer(pk feature.Key) bool         { return h.d.peers.has(pk) }
func (h host) PeerKeys() []feature.Key             { return h.d.peers.list() }
func (h host) PeerCount() int                      { return h.d.peers.len() }
func (h host) View() (feature.View, error)         { return h.d.upstreamView() }
func (h host) Upstream() *wgdevice.Device          { return h.d.wg }
func (h host) Bind() *conn.Bind                    { return h.d.bind }
func (h host) TUN() *tun.UpDelay                   { return h.d.tun }
func (h host) Identity() *feature.Identity         { return h.d.identity.Load() }
func (h host) Sources() *feature.Sources           { return h.d.sources }
func (h host) IsUp() bool                          { return h.d.IsUp() }
func (h host) Configured() bool                    { return h.d.Configured() }
func (h host) SetDraining(on bool) bool            { return h.d.ready.draining.Swap(on) }
func (h host) Go(fn func())                        { h.d.goroutine(fn) }
func (h host) Done() <-chan struct{}               { return h.d.done }

// Configure applies a feature's typed change through the same path as an
// operator's transaction, marked with the feature's name.
func (h host) Configure(origin string, c feature.Config) error {
	text := c.UAPI()
	if text == "" {
		return nil
	}
	lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
	set, err := uapi.ParseSet(lines, h.d.keys.parser)
	if err != nil {
		return fmt.Errorf("failed to configure (%s): %w", origin, err)
	}
	return h.d.applySet(set, origin)
}

// upstreamView reads upstream's runtime state through its get reply.
func (d *Device) upstreamView() (feature.View, error) {
	var r feature.ViewReader
	if err := d.wg.IpcGetOperation(&r); err != nil {
		return feature.View{}, fmt.Errorf("failed to read device state: %w", err)
	}
	return r.View(), nil
}
