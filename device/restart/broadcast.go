package restart

import (
	"fmt"
	"github.com/wghooks/wghooks/device/feature"
	"sort"
	"sync"
	"time"

	wgconn "golang.zx2c4.com/wireguard/conn"
	wgdevice "golang.zx2c4.com/wireguard/device"
)

// Broadcast sends a handshake initiation now to every peer whose endpoint
// is known, and returns how many peers it asked. Clients answer within one
// round trip, and the device confirms each new session with a keepalive.
//
// Skipped: peers without an endpoint (upstream would arm a 90 s retry
// loop for them), and peers whose address sent us an initiation in the
// last 5 s (initiating back would cross handshakes and stall both for
// 5 s). Upstream's own limit applies: a peer that had a handshake message
// from us in the last 5 s gets nothing new.
//
// The device broadcasts by itself at Up (see Config.Broadcast). On
// a netstack TUN, which is up before anything is configured, call
// Broadcast after configuring the peers; it first applies the state file
// if that has not happened yet. Call it only on the side that restarted.
func (r *Restart) Broadcast() (int, error) {
	if !r.host.IsUp() {
		return 0, fmt.Errorf("failed to broadcast handshakes: device is down")
	}
	r.startup.Lock()
	if r.startup.restorePending && r.host.PeerCount() > 0 {
		r.restoreLocked()
	}
	r.startup.broadcastPending = false
	r.startup.Unlock()
	return r.broadcast("on demand"), nil
}

// broadcast runs one broadcast; why names it in the log.
func (r *Restart) broadcast(why string) int {
	v, err := r.host.View()
	if err != nil {
		r.host.Errorf("failed to broadcast handshakes: %v", err)
		return 0
	}
	r.wake.learn(&v)
	// Most recently active first: with thousands of peers, those most
	// likely to be waiting go out first.
	peers := v.Peers
	r.state.Lock()
	last := func(p *feature.PeerView) time.Time {
		if !p.Handshake.IsZero() {
			return p.Handshake
		}
		return r.state.carried[p.PublicKey].lastHandshake
	}
	sort.SliceStable(peers, func(i, j int) bool { return last(&peers[i]).After(last(&peers[j])) })
	r.state.Unlock()

	sent, noEndpoint, crossing := 0, 0, 0
	for i := range peers {
		p := &peers[i]
		select {
		case <-r.host.Done():
			return sent
		default:
		}
		if p.Endpoint == "" {
			noEndpoint++
			continue
		}
		if r.recent.within(p.Endpoint, wgdevice.RekeyTimeout) {
			crossing++
			r.host.Verbosef("%s - broadcast skipped: it is handshaking with us already", feature.ShortKey(p.PublicKey))
			continue
		}
		peer := r.host.Upstream().LookupPeer(p.PublicKey)
		if peer == nil {
			continue
		}
		if err := peer.SendHandshakeInitiation(false); err != nil {
			r.host.Verbosef("%s - broadcast: %v", feature.ShortKey(p.PublicKey), err)
			continue
		}
		sent++
	}
	r.c.Broadcasts.Add(1)
	r.host.Verbosef("handshake broadcast (%s): initiation to %d peers; skipped %d without endpoint, %d already handshaking", why, sent, noEndpoint, crossing)
	return sent
}

// recentInitiations remembers, per source address, when the last
// handshake initiation arrived, so a broadcast does not cross it. It is
// written on receive goroutines (initiations only, and not while the
// device is under load), briefly locked.
type recentInitiations struct {
	sync.Mutex
	m map[string]time.Time
}

// maxRecentInitiations bounds the map; older entries are pruned first.
const maxRecentInitiations = 4096

func (ri *recentInitiations) init() { ri.m = make(map[string]time.Time) }

func (ri *recentInitiations) note(ep wgconn.Endpoint) {
	addr := ep.DstToString()
	now := time.Now()
	ri.Lock()
	defer ri.Unlock()
	if len(ri.m) >= maxRecentInitiations {
		for k, t := range ri.m {
			if now.Sub(t) > wgdevice.RekeyTimeout {
				delete(ri.m, k)
			}
		}
		if len(ri.m) >= maxRecentInitiations {
			return
		}
	}
	ri.m[addr] = now
}

// within reports whether addr sent an initiation in the last d.
func (ri *recentInitiations) within(addr string, d time.Duration) bool {
	ri.Lock()
	defer ri.Unlock()
	t, ok := ri.m[addr]
	return ok && time.Since(t) < d
}
