package restart

import (
	"github.com/wghooks/wghooks/device/feature"
	"time"

	wgdevice "golang.zx2c4.com/wireguard/device"
)

// Dead-peer detection, the client side of a server restart.
//
// A client whose server restarted keeps sending on a session nobody holds
// any more; upstream re-handshakes 15 s after data went unanswered, and
// never for keepalives alone. With Config.DeadPeerTimeout set, a
// goroutine samples every peer's byte counters a few times per timeout
// (through IpcGet, never per packet) and, when a peer was sent something
// and has not been heard from for the timeout, starts a handshake now.
// Storms are ruled out by deadPeerState.step: one attempt per
// max(timeout, 5 s) per peer, doubling up to 2 minutes while it stays
// silent, reset as soon as it is heard.

// maxDeadPeerBackoff caps the wait between attempts to a silent peer.
const maxDeadPeerBackoff = 2 * time.Minute

// deadPeerState is what the detector knows of one peer.
type deadPeerState struct {
	rx, tx     uint64
	unanswered time.Time // first send seen since the peer was last heard; zero if none
	next       time.Time // no attempt before this
	backoff    uint
}

// step takes one sample of the peer's counters and decides whether to
// start a handshake now. It is pure.
func (s *deadPeerState) step(rx, tx uint64, now time.Time, timeout time.Duration) bool {
	if rx != s.rx {
		*s = deadPeerState{rx: rx, tx: tx}
		return false
	}
	if tx != s.tx {
		s.tx = tx
		if s.unanswered.IsZero() {
			s.unanswered = now
		}
	}
	if s.unanswered.IsZero() || now.Sub(s.unanswered) < timeout || now.Before(s.next) {
		return false
	}
	wait := max(timeout, wgdevice.RekeyTimeout) << s.backoff
	if wait > maxDeadPeerBackoff || wait <= 0 {
		wait = maxDeadPeerBackoff
	}
	if wait < maxDeadPeerBackoff {
		s.backoff++
	}
	s.next = now.Add(wait)
	return true
}

// absorbed undoes the last step's wait when the attempt sent nothing
// (upstream's 5 s limit swallowed it, a handshake having just happened):
// try again at retry instead of backing off.
func (s *deadPeerState) absorbed(now time.Time, retry time.Duration) {
	if s.backoff > 0 {
		s.backoff--
	}
	s.next = now.Add(retry)
}

// deadPeerInterval is how often counters are sampled for timeout.
func deadPeerInterval(timeout time.Duration) time.Duration {
	return min(max(timeout/4, 250*time.Millisecond), 5*time.Second)
}

func (r *Restart) deadPeerLoop() {
	timeout := r.cfg.DeadPeerTimeout
	peers := make(map[feature.Key]*deadPeerState)
	r.everyWhileUp(deadPeerInterval(timeout), func() {
		v, err := r.host.View()
		if err != nil {
			return
		}
		now := time.Now()
		seen := make(map[feature.Key]bool, len(v.Peers))
		for _, p := range v.Peers {
			seen[p.PublicKey] = true
			st, ok := peers[p.PublicKey]
			if !ok {
				peers[p.PublicKey] = &deadPeerState{rx: p.Rx, tx: p.Tx}
				continue
			}
			if !st.step(p.Rx, p.Tx, now, timeout) {
				continue
			}
			// Without an endpoint upstream would arm a 90 s retry
			// loop; a peer initiating to us right now needs nothing.
			if p.Endpoint == "" || r.recent.within(p.Endpoint, wgdevice.RekeyTimeout) {
				continue
			}
			peer := r.host.Upstream().LookupPeer(p.PublicKey)
			if peer == nil {
				continue
			}
			// Did upstream's 5 s limit swallow the call? The bind counts
			// what actually left.
			sent := r.c.InitiationsSent.Load()
			if err := peer.SendHandshakeInitiation(false); err != nil {
				r.host.Verbosef("%s - dead-peer detection: %v", feature.ShortKey(p.PublicKey), err)
			}
			if r.c.InitiationsSent.Load() == sent {
				st.absorbed(now, deadPeerInterval(timeout))
				continue
			}
			r.host.Verbosef("%s - sent and heard nothing for %s: handshake initiated", feature.ShortKey(p.PublicKey), now.Sub(st.unanswered).Round(time.Millisecond))
		}
		for pk := range peers {
			if !seen[pk] {
				delete(peers, pk)
			}
		}
	})
}
