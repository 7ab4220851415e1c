package jit

// The receive path: what each initiation costs before a decoder sees it
// (OnReceive, admit), and initiations from known sources watched until
// the device answers them.

import (
	"net/netip"
	"sync"
	"time"

	wgconn "golang.zx2c4.com/wireguard/conn"

	"github.com/wghooks/wghooks/conn"
	"github.com/wghooks/wghooks/device/feature"
)

// ReceiveTypes selects initiations while a provider is set.
func (j *JIT) ReceiveTypes() uint8 {
	if !j.enabled() {
		return 0
	}
	return conn.TypeMask(conn.MessageInitiation)
}

// OnReceive runs on a receive goroutine: it never blocks. It calls the
// upstream device's IsUnderLoad, which reads a channel length and an
// atomic and takes no lock.
func (j *JIT) OnReceive(pkt []byte, ep wgconn.Endpoint) conn.Verdict {
	if len(pkt) != conn.MessageInitiationSize {
		return conn.Pass
	}
	id := j.host.Identity()
	if id == nil {
		return conn.Pass
	}
	src := conn.DstAddrPort(ep)
	if !src.IsValid() {
		return conn.Pass
	}
	now := time.Now()
	if j.host.Sources().Known(src, now) {
		j.watchInitiation(pkt, ep, src, now)
		return conn.Pass
	}
	if !j.admit(id, pkt, src) {
		return conn.Pass
	}
	job := decodeJob{ep: ep, src: src, at: now}
	copy(job.pkt[:], pkt)
	select {
	case j.jobs <- job:
		return conn.Hold
	default:
		return conn.Pass
	}
}

// admit decides from cheap signals whether an initiation may cost a
// decode: a valid mac1, a device and decoders that are not under load
// (then upstream's cookie defence handles everything), the source IP
// within its rate, and all sources together within the lookup budget.
func (j *JIT) admit(id *feature.Identity, pkt []byte, src netip.AddrPort) bool {
	if !id.CheckMAC1(pkt) {
		return false
	}
	if j.host.Upstream().IsUnderLoad() || len(j.jobs) >= cap(j.jobs)/2 {
		return false
	}
	if !j.limiter.Allow(src.Addr()) {
		return false
	}
	if !j.budget.allow(time.Now()) {
		j.c.LookupsRefused.Add(1)
		return false
	}
	return true
}

// OnSend learns which watched initiations the device answered (the
// core learns known sources from the same messages).
func (j *JIT) OnSend(bufs [][]byte, _ wgconn.Endpoint) {
	if !j.enabled() || len(bufs) != 1 {
		return
	}
	pkt := bufs[0]
	switch conn.MessageType(pkt) {
	case conn.MessageResponse:
		if r, ok := conn.ResponseReceiver(pkt); ok {
			j.watch.answered(r)
		}
	case conn.MessageCookieReply:
		if len(pkt) == conn.MessageCookieReplySize {
			j.watch.answered(conn.InitiationSender(pkt))
		}
	}
}

// watchSet holds copies of initiations passed to the device from known
// sources until the device answers them (a response or cookie reply to
// their sender index), and lets provisioning wait for an answer.
type watchSet struct {
	mu      sync.Mutex
	m       map[uint32]decodeJob
	waiters map[uint32]chan struct{}
}

func (j *JIT) watchInitiation(pkt []byte, ep wgconn.Endpoint, src netip.AddrPort, now time.Time) {
	w := &j.watch
	w.mu.Lock()
	if len(w.m) >= maxWatched {
		w.mu.Unlock()
		return
	}
	job := decodeJob{ep: ep, src: src, at: now, watched: true}
	copy(job.pkt[:], pkt)
	w.m[conn.InitiationSender(pkt)] = job
	first := len(w.m) == 1
	w.mu.Unlock()
	if first {
		select {
		case j.kick <- struct{}{}:
		default:
		}
	}
}

func (w *watchSet) answered(sender uint32) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.m, sender)
	if ch, ok := w.waiters[sender]; ok {
		close(ch)
		delete(w.waiters, sender)
	}
}

// await returns a channel closed when the device answers sender.
func (w *watchSet) await(sender uint32) <-chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.waiters == nil {
		w.waiters = make(map[uint32]chan struct{})
	}
	ch := make(chan struct{})
	w.waiters[sender] = ch
	return ch
}

func (w *watchSet) forget(sender uint32) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.waiters, sender)
}

// unanswered removes and returns the watched initiations older than
// watchAfter, and reports whether any remain.
func (w *watchSet) unanswered(now time.Time) (due []decodeJob, more bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for k, job := range w.m {
		if now.Sub(job.at) >= watchAfter {
			due = append(due, job)
			delete(w.m, k)
		}
	}
	return due, len(w.m) > 0
}

// redecode sends unanswered initiations to the decoders, under the same
// gates as new sources.
func (j *JIT) redecode(due []decodeJob) {
	id := j.host.Identity()
	for _, job := range due {
		if id == nil || !j.admit(id, job.pkt[:], job.src) {
			continue
		}
		select {
		case j.jobs <- job:
		default:
			return
		}
	}
}
