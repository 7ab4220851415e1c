package device

// Source-address reset.
//
// A reply should leave from the local address the peer contacted, and a
// host with two uplinks should follow its routes when they change. The
// bind caches, per endpoint, the local address a peer's datagrams arrived
// on and sends from it (conn.StickyBind on Linux; upstream's own sticky
// capture is dormant under UDP GRO, and wrapping its bind turns off its
// route listener). ResetSource and ResetSources forget that choice so the
// next datagram to the peer leaves from the address the routing table
// picks, without losing any packet: the endpoint in use is replaced by an
// equal one without a cached source, and the bind ignores sources it
// learns from datagrams still in flight to the old address for a short
// grace period. On Linux a route, address or link change resets the
// sources of the peers whose route it moved (conn.RouteWatcher).

import (
	"fmt"
	"net/netip"

	wgdevice "golang.zx2c4.com/wireguard/device"

	"wghooks/conn"
	"wghooks/uapi"
)

type sourceReset struct {
	e     *endpoints
	cache conn.SourceResetter // nil when the bind caches no sources
	watch *conn.RouteWatcher
}

func newSourceReset(e *endpoints) *sourceReset {
	s := &sourceReset{e: e}
	var inner any = e.d.bind.Unwrap()
	if r, ok := inner.(conn.SourceResetter); ok {
		s.cache = r
	}
	return s
}

// start watches routes (Linux) unless configured off or the bind caches
// no sources.
func (s *sourceReset) start() error {
	if s.e.cfg.NoRouteWatch || s.cache == nil {
		return nil
	}
	w, err := conn.WatchRoutes(func() { s.routesChanged() })
	if err != nil {
		return err
	}
	s.watch = w
	return nil
}

func (s *sourceReset) close() {
	if s.watch != nil {
		s.watch.Close()
	}
}

// routesChanged runs on the watcher's goroutine after a burst of route,
// address or link changes.
func (s *sourceReset) routesChanged() {
	n := s.cache.RoutesChanged()
	if n == 0 {
		return
	}
	s.e.d.stats.SourceResets.Add(uint64(n))
	s.e.d.log.Verbosef("routes changed: reset the source address of %d endpoints", n)
	// Tell the peers at once where we are now: a keepalive from the new
	// source makes them roam to it before they send to the old one again.
	s.e.d.wg.SendKeepalivesToPeersWithCurrentKeypair()
}

// ResetSource forgets the local source address cached for the peer with
// public key pk: its next datagram leaves from the address the routing
// table picks. No packet is lost.
func (d *Device) ResetSource(pk wgdevice.NoisePublicKey) error {
	if d.wg.LookupPeer(pk) == nil {
		return fmt.Errorf("failed to reset source address of %s: no such peer", shortKey(pk))
	}
	d.endpoints.src.reset(map[wgdevice.NoisePublicKey]bool{pk: true})
	return nil
}

// ResetSources forgets the cached source addresses of all peers.
func (d *Device) ResetSources() {
	d.endpoints.src.reset(nil)
}

// reset replaces the endpoint of each peer in keys (all when nil) by an
// equal one without a cached source, and tells the bind to ignore sources
// learned from datagrams still in flight.
func (s *sourceReset) reset(keys map[wgdevice.NoisePublicKey]bool) {
	d := s.e.d
	eps, err := s.endpointsInUse()
	if err != nil {
		d.log.Errorf("failed to reset source addresses: %v", err)
		return
	}
	if keys == nil && s.cache != nil {
		s.cache.ResetAllSources()
	}
	n := 0
	for pk, ap := range eps {
		if keys != nil && !keys[pk] {
			continue
		}
		if keys != nil && s.cache != nil {
			s.cache.ResetSource(ap)
		}
		peer := d.wg.LookupPeer(pk)
		if peer == nil {
			continue
		}
		ep, err := d.bind.ParseEndpoint(ap.String())
		if err != nil {
			continue
		}
		peer.SetEndpointFromPacket(ep)
		n++
	}
	d.stats.SourceResets.Add(uint64(n))
	d.log.Verbosef("reset the source address of %d peers", n)
}

// endpointsInUse reads each peer's endpoint from upstream, which exposes
// no per-peer endpoint getter (a reset is rare).
func (s *sourceReset) endpointsInUse() (map[wgdevice.NoisePublicKey]netip.AddrPort, error) {
	v, err := s.e.d.view()
	if err != nil {
		return nil, err
	}
	return v.byPeer(), nil
}

func init() {
	validateTrue := func(v string) error {
		if v != "true" {
			return fmt.Errorf("want true")
		}
		return nil
	}
	deviceKeys["wghooks_reset_source"] = deviceKey{
		doc:      "true: forget every peer's cached source address (replies follow the routing table)",
		validate: validateTrue,
		apply: func(d *Device, _ string) error {
			d.ResetSources()
			return nil
		},
	}
	peerKeys["wghooks_reset_source"] = peerKey{
		doc:      "true: forget this peer's cached source address",
		validate: validateTrue,
		apply: func(d *Device, pk wgdevice.NoisePublicKey, _ string) error {
			if err := d.ResetSource(pk); err != nil {
				return uapi.Errorf(uapi.ErrnoInvalid, "%w", err)
			}
			return nil
		},
	}
}
