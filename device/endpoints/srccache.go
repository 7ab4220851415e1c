package endpoints

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

	"github.com/wghooks/wghooks/conn"
	"github.com/wghooks/wghooks/device/feature"
	"github.com/wghooks/wghooks/uapi"
)

type sourceReset struct {
	e     *Endpoints
	cache conn.SourceResetter // nil when the bind caches no sources
	watch *conn.RouteWatcher
}

func newSourceReset(e *Endpoints) *sourceReset {
	s := &sourceReset{e: e}
	var inner any = e.host.Bind().Unwrap()
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
	s.e.c.SourceResets.Add(uint64(n))
	s.e.host.Verbosef("routes changed: reset the source address of %d endpoints", n)
	// Tell the peers at once where we are now: a keepalive from the new
	// source makes them roam to it before they send to the old one again.
	s.e.host.Upstream().SendKeepalivesToPeersWithCurrentKeypair()
}

// ResetSource forgets the local source address cached for the peer with
// public key pk: its next datagram leaves from the address the routing
// table picks. No packet is lost.
func (e *Endpoints) ResetSource(pk feature.Key) error {
	if e.host.Upstream().LookupPeer(pk) == nil {
		return fmt.Errorf("failed to reset source address of %s: no such peer", feature.ShortKey(pk))
	}
	e.src.reset(map[feature.Key]bool{pk: true})
	return nil
}

// ResetSources forgets the cached source addresses of all peers.
func (e *Endpoints) ResetSources() {
	e.src.reset(nil)
}

// reset replaces the endpoint of each peer in keys (all when nil) by an
// equal one without a cached source, and tells the bind to ignore sources
// learned from datagrams still in flight.
func (s *sourceReset) reset(keys map[feature.Key]bool) {
	h := s.e.host
	eps, err := s.endpointsInUse()
	if err != nil {
		h.Errorf("failed to reset source addresses: %v", err)
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
		peer := h.Upstream().LookupPeer(pk)
		if peer == nil {
			continue
		}
		ep, err := h.Bind().ParseEndpoint(ap.String())
		if err != nil {
			continue
		}
		peer.SetEndpointFromPacket(ep)
		n++
	}
	s.e.c.SourceResets.Add(uint64(n))
	h.Verbosef("reset the source address of %d peers", n)
}

// endpointsInUse reads each peer's endpoint from upstream, which exposes
// no per-peer endpoint getter (a reset is rare).
func (s *sourceReset) endpointsInUse() (map[feature.Key]netip.AddrPort, error) {
	v, err := s.e.host.View()
	if err != nil {
		return nil, err
	}
	return v.ByPeer(), nil
}

// sourceKeys are the wghooks_reset_source keys, for the device and for
// one peer.
func (e *Endpoints) sourceKeys() []feature.ExtKey {
	return []feature.ExtKey{{
		Name:     "wghooks_reset_source",
		Doc:      "true: forget every peer's cached source address (replies follow the routing table)",
		Validate: feature.ValidateTrue,
		ApplyDevice: func(string) error {
			e.ResetSources()
			return nil
		},
	}, {
		Name:     "wghooks_reset_source",
		Peer:     true,
		Doc:      "true: forget this peer's cached source address",
		Validate: feature.ValidateTrue,
		ApplyPeer: func(pk feature.Key, _ string) error {
			if err := e.ResetSource(pk); err != nil {
				return uapi.Errorf(uapi.ErrnoInvalid, "%w", err)
			}
			return nil
		},
	}}
}
