// Package guard is wghooks' defence against floods of bogus handshake
// initiations, in front of upstream's own.
//
// The handshake guard: wghooks' defence against floods of bogus handshake
// initiations, in front of upstream's own.
//
// Upstream answers a flood with cookies only once its handshake queue is
// an eighth full, that is once its handshake goroutines are already behind.
// Below that, every initiation with a valid mac1 costs it one or two X25519
// (about 180 µs here), so a flood of a few thousand packets per second
// that never fills the queue takes most of a core from the peers' traffic.
// The guard first drops copies of initiations it let through recently
// (replays.go: upstream would reject them for their timestamp, after the
// X25519). It then counts what can cost that work, initiations from new
// sources (known sources, see feature.Sources, pass once their mac1 checks,
// within a budget a genuine peer never exhausts; a flood spoofing a peer's
// address does, and its excess counts as a new source's), and past
// GuardConfig.Rate per second it does what upstream does under load, for
// the price of two keyed hashes: an initiation must carry a valid mac2,
// proof that its sender receives at its address; one without gets a cookie
// reply (at most a few per second per source IP) and is dropped; one with
// it passes within a per-IP rate. A genuine client resends with the cookie
// at its next retransmit.
//
// The guard's cookies are its own (upstream's cookie secret is not
// exported). Once the guard requires them upstream's queue stays short, so
// upstream's own defence, which answers every cookie-less initiation with a
// reply of its own, rarely engages as well; when both do, a client may
// need one more retransmit.
package guard

import (
	"encoding/binary"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	wgconn "golang.zx2c4.com/wireguard/conn"
	wgdevice "golang.zx2c4.com/wireguard/device"
	"golang.zx2c4.com/wireguard/ratelimiter"

	"github.com/wghooks/wghooks/conn"
	"github.com/wghooks/wghooks/device/feature"
	"github.com/wghooks/wghooks/uapi"
)

// Config configures the handshake guard. The zero value turns it on
// with the defaults.
type Config struct {
	// Rate is how many handshake initiations per second from new source
	// addresses the device takes without a cookie. Above it, until a
	// second after the excess stops, such initiations must carry a cookie
	// (mac2). Default 256 (about 5% of one core in X25519); negative
	// turns the guard off, leaving upstream's defence alone.
	Rate int
}

const (
	defaultGuardRate = 256
	// guardHold is how long the guard keeps requiring cookies after the
	// rate was last exceeded, as upstream's UnderLoadAfterTime.
	guardHold = time.Second
	// cookieQueueLen bounds cookie replies waiting to be sent; past it
	// they are dropped, which bounds the reflection a spoofed flood gets.
	cookieQueueLen = 256
)

// Guard is the handshake-guard feature.
type Guard struct {
	feature.Base
	host feature.Host
	c    *feature.Counters
	rate float64 // initiations per second; 0 when off

	// budgets are the known sources' allowances (budget.go).
	budgets budgets

	// bucket holds up to rate tokens, one per initiation from a new
	// source, refilled at rate per second.
	bucket struct {
		sync.Mutex
		feature.Bucket
	}
	floodUntil atomic.Int64 // UnixNano; cookies required before it
	episode    struct {
		sync.Mutex
		on, logged        bool
		dropped0, sent0   uint64 // counters when it began
		start, lastLogged time.Time
	}

	replays       replayCache
	cookieLimiter ratelimiter.Ratelimiter // cookie replies per source IP
	passLimiter   ratelimiter.Ratelimiter // cookie-bearing initiations per source IP
	replies       chan cookieJob
}

type cookieJob struct {
	pkt [conn.MessageInitiationSize]byte
	ep  wgconn.Endpoint
}

// New builds the guard and starts its goroutines on host.
func New(host feature.Host, cfg Config) *Guard {
	g := newGuard(host, cfg)
	if g.rate > 0 {
		host.Go(g.sendCookies)
	}
	host.Go(g.housekeep)
	return g
}

// newGuard readies the guard's state; New adds its goroutines.
func newGuard(host feature.Host, cfg Config) *Guard {
	g := &Guard{host: host, c: host.Counters()}
	switch r := cfg.Rate; {
	case r == 0:
		g.rate = defaultGuardRate
	case r > 0:
		g.rate = float64(r)
	}
	g.budgets.init()
	if g.rate > 0 {
		g.cookieLimiter.Init()
		g.passLimiter.Init()
		g.replies = make(chan cookieJob, cookieQueueLen)
	}
	return g
}

// Name is the guard's name in logs.
func (*Guard) Name() string { return "guard" }

// Close stops the rate limiters.
func (g *Guard) Close() {
	if g.rate > 0 {
		g.cookieLimiter.Close()
		g.passLimiter.Close()
	}
}

// ReceiveTypes selects initiations, unless the guard is off.
func (g *Guard) ReceiveTypes() uint8 {
	if g.rate == 0 {
		return 0
	}
	return conn.TypeMask(conn.MessageInitiation)
}

// OnReceive runs on a receive goroutine and never blocks: the dearest
// thing it does is two keyed BLAKE2s over 116 bytes. Junk without a valid
// mac1 is dropped before it can take a known source's budget.
func (g *Guard) OnReceive(pkt []byte, ep wgconn.Endpoint) conn.Verdict {
	if len(pkt) != conn.MessageInitiationSize {
		return conn.Pass // upstream drops it
	}
	id := g.host.Identity()
	if id == nil {
		return conn.Pass // no private key: upstream answers nothing
	}
	src := conn.DstAddrPort(ep)
	if !src.IsValid() {
		return conn.Pass
	}
	now := time.Now()
	mac1 := conn.InitiationMAC1(pkt)
	if g.replays.has(mac1) {
		g.c.GuardDropped.Add(1)
		g.c.ReplaysDropped.Add(1)
		return conn.Hold
	}
	if !id.Cookies.CheckMAC1(pkt) {
		g.c.GuardDropped.Add(1)
		return conn.Hold // upstream would drop it after the same check
	}
	if g.host.Sources().Known(src, now) && g.budgets.take(src, now) {
		return g.pass(mac1, now)
	}
	if g.take(now) && now.UnixNano() >= g.floodUntil.Load() {
		return g.pass(mac1, now)
	}
	if id.Cookies.CheckMAC2(pkt, ep.DstToBytes()) {
		if g.passLimiter.Allow(src.Addr()) {
			return g.pass(mac1, now)
		}
		g.c.GuardDropped.Add(1)
		return conn.Hold
	}
	g.c.GuardDropped.Add(1)
	if g.cookieLimiter.Allow(src.Addr()) {
		job := cookieJob{ep: ep}
		copy(job.pkt[:], pkt)
		select {
		case g.replies <- job:
		default:
		}
	}
	return conn.Hold
}

// pass lets an initiation through to the device and remembers it, so its
// copies are dropped.
func (g *Guard) pass(mac1 [16]byte, now time.Time) conn.Verdict {
	g.replays.add(mac1, now)
	return conn.Pass
}

// take takes a token for one initiation from a new source; without one,
// the device is flooded until guardHold from now.
func (g *Guard) take(now time.Time) bool {
	b := &g.bucket
	b.Lock()
	ok := b.Take(now, g.rate, g.rate)
	b.Unlock()
	if !ok {
		g.floodUntil.Store(now.Add(guardHold).UnixNano())
	}
	return ok
}

// Flooded reports whether the guard requires cookies now.
func (g *Guard) Flooded() bool { return time.Now().UnixNano() < g.floodUntil.Load() }

// OnSend gives a known source one initiation of its budget back for each
// handshake message the device sends it (the core makes it known).
func (g *Guard) OnSend(bufs [][]byte, ep wgconn.Endpoint) {
	if len(bufs) != 1 {
		return
	}
	switch conn.MessageType(bufs[0]) {
	case conn.MessageInitiation, conn.MessageResponse:
		if src := conn.DstAddrPort(ep); src.IsValid() {
			g.budgets.refund(src)
		}
	}
}

// sendCookies answers cookie-less initiations during a flood, off the
// receive path, with the guard's own cookie secret.
func (g *Guard) sendCookies() {
	for {
		select {
		case job := <-g.replies:
			id := g.host.Identity()
			if id == nil {
				continue
			}
			reply, err := id.Cookies.CreateReply(job.pkt[:], conn.InitiationSender(job.pkt[:]), job.ep.DstToBytes())
			if err != nil {
				g.host.Errorf("guard: failed to create a cookie reply: %v", err)
				continue
			}
			if err := g.host.Bind().SendInner([][]byte{marshalCookieReply(reply)}, job.ep); err == nil {
				g.c.CookiesSent.Add(1)
			}
		case <-g.host.Done():
			return
		}
	}
}

func marshalCookieReply(r *wgdevice.MessageCookieReply) []byte {
	b := make([]byte, conn.MessageCookieReplySize)
	binary.LittleEndian.PutUint32(b, r.Type)
	binary.LittleEndian.PutUint32(b[4:], r.Receiver)
	n := copy(b[8:], r.Nonce[:])
	copy(b[8+n:], r.Cookie[:])
	return b
}

// housekeep forgets old budgets and logs each flood once, when it begins
// and when it ends (at most one beginning a minute).
func (g *Guard) housekeep() {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	lastExpire := time.Now()
	for {
		select {
		case now := <-tick.C:
			if now.Sub(lastExpire) >= time.Minute {
				g.budgets.expire(now)
				lastExpire = now
			}
			if g.rate > 0 {
				g.logEpisode(now)
			}
		case <-g.host.Done():
			return
		}
	}
}

func (g *Guard) logEpisode(now time.Time) {
	e := &g.episode
	e.Lock()
	defer e.Unlock()
	flooded := g.Flooded()
	c := g.c
	switch {
	case flooded && !e.on:
		e.on, e.start = true, now
		e.dropped0, e.sent0 = c.GuardDropped.Load(), c.CookiesSent.Load()
		e.logged = now.Sub(e.lastLogged) >= time.Minute
		if e.logged {
			e.lastLogged = now
			g.host.Errorf("guard: more than %.0f handshake initiations/s from new sources: requiring cookies", g.rate)
		}
	case !flooded && e.on:
		e.on = false
		if !e.logged {
			return
		}
		g.host.Errorf("guard: handshake flood over after %v: %d initiations dropped, %d cookie replies sent",
			now.Sub(e.start).Round(time.Second), c.GuardDropped.Load()-e.dropped0, c.CookiesSent.Load()-e.sent0)
	}
}

// GetLines are the guard's state and counters in a get reply.
func (g *Guard) GetLines() []uapi.Line {
	c := g.c
	return []uapi.Line{
		{Key: "wghooks_flooded", Value: strconv.FormatBool(g.Flooded())},
		{Key: "wghooks_handshakes_guarded", Value: strconv.FormatUint(c.GuardDropped.Load(), 10)},
		{Key: "wghooks_cookie_replies", Value: strconv.FormatUint(c.CookiesSent.Load(), 10)},
		{Key: "wghooks_handshake_replays", Value: strconv.FormatUint(c.ReplaysDropped.Load(), 10)},
	}
}
