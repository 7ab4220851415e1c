package testkit

// Pinger: numbered ICMP echoes through a tunnel, recording when each was
// sent and answered, so a test counts losses exactly and finds when
// traffic flowed again.

import (
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"
)

// Pinger sends numbered echoes from one node to one tunnel address and
// records when each was sent and answered. It is safe for concurrent use.
//
// Two ways to send, because a netstack ping socket wakes its reader only
// when a reply lands in an empty queue, so a reply that arrives while
// nobody waits is never read, nor is anything after it:
//
//   - Send writes on the pinger's own socket, read by one goroutine; a
//     late reply still counts. For echoes spaced out by the test (at least
//     a round trip apart), as a burst of replies could stall the socket.
//   - Every writes each echo on a socket of its own that waits up to
//     PingerWait for its reply, so replies bunched up after an outage are
//     all read.
type Pinger struct {
	from *Node
	to   netip.Addr
	c    net.Conn      // Send's socket, opened on first use
	read chan struct{} // closed when Send's reader ends

	mu      sync.Mutex
	seq     uint16
	sent    map[uint16]time.Time
	got     map[uint16]time.Time
	open    map[uint16]net.Conn // Every's sockets still waiting for their reply
	stopped bool

	stopOnce sync.Once
	stop     chan struct{} // closed by Stop
	wg       sync.WaitGroup
}

// PingerWait is how long an echo sent by Every waits for its reply; a
// later reply is not seen, so it counts as lost.
const PingerWait = 5 * time.Second

// StartPinger returns a pinger from from to to; it sends nothing yet. The
// caller stops it.
func StartPinger(from *Node, to netip.Addr) *Pinger {
	return &Pinger{from: from, to: to, sent: map[uint16]time.Time{}, got: map[uint16]time.Time{}, open: map[uint16]net.Conn{}, stop: make(chan struct{})}
}

// NewPinger is StartPinger, stopped at the test's Cleanup.
func NewPinger(tb testing.TB, from *Node, to netip.Addr) *Pinger {
	p := StartPinger(from, to)
	tb.Cleanup(p.Stop)
	return p
}

// nextLocked numbers an echo and records when it was sent; ok is false after
// Stop. Called with p.mu held.
func (p *Pinger) nextLocked() (seq uint16, ok bool) {
	if p.stopped {
		return 0, false
	}
	p.seq++
	p.sent[p.seq] = time.Now()
	return p.seq, true
}

func echoRequest(seq uint16) []byte {
	return []byte{8, 0, 0, 0, 0, 1, byte(seq >> 8), byte(seq), 'w', 'g'}
}

// Send sends the next echo on the pinger's socket and returns its
// sequence number (0 after Stop; an echo whose socket cannot be opened
// counts as lost).
func (p *Pinger) Send() uint16 {
	p.mu.Lock()
	defer p.mu.Unlock()
	seq, ok := p.nextLocked()
	if !ok {
		return 0
	}
	if p.c == nil {
		c, err := p.from.Net.DialPingAddr(netip.Addr{}, p.to)
		if err != nil {
			return seq
		}
		p.c, p.read = c, make(chan struct{})
		go p.reader(c)
	}
	p.c.Write(echoRequest(seq))
	return seq
}

// reader records the replies that come to Send's socket until it closes.
func (p *Pinger) reader(c net.Conn) {
	defer close(p.read)
	buf := make([]byte, 1500)
	for {
		n, err := c.Read(buf)
		if err != nil {
			return
		}
		if n >= 8 && buf[0] == 0 { // an echo reply; the id is the socket's
			seq := uint16(buf[6])<<8 | uint16(buf[7])
			p.mu.Lock()
			if _, ok := p.got[seq]; !ok {
				p.got[seq] = time.Now()
			}
			p.mu.Unlock()
		}
	}
}

// sendOwn sends the next echo on a socket of its own (Every).
func (p *Pinger) sendOwn() {
	p.mu.Lock()
	defer p.mu.Unlock()
	seq, ok := p.nextLocked()
	if !ok {
		return
	}
	c, err := p.from.Net.DialPingAddr(netip.Addr{}, p.to)
	if err != nil {
		return
	}
	p.open[seq] = c
	p.wg.Add(1)
	go p.await(seq, c)
}

// await writes echo seq on c and records its reply.
func (p *Pinger) await(seq uint16, c net.Conn) {
	defer p.wg.Done()
	defer func() {
		c.Close()
		p.mu.Lock()
		delete(p.open, seq)
		p.mu.Unlock()
	}()
	c.SetDeadline(time.Now().Add(PingerWait))
	if _, err := c.Write(echoRequest(seq)); err != nil {
		return
	}
	buf := make([]byte, 1500)
	for {
		n, err := c.Read(buf)
		if err != nil {
			return
		}
		if n >= 8 && buf[0] == 0 {
			p.mu.Lock()
			p.got[seq] = time.Now()
			p.mu.Unlock()
			return
		}
	}
}

// Every sends an echo now and then every interval, each on its own
// socket, until Stop.
func (p *Pinger) Every(interval time.Duration) {
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for {
			p.sendOwn()
			select {
			case <-p.stop:
				return
			case <-tick.C:
			}
		}
	}()
}

// Stop stops sending, closes the sockets and waits for the pinger's
// goroutines; the record stays readable. It is idempotent.
func (p *Pinger) Stop() {
	p.stopOnce.Do(func() {
		p.mu.Lock()
		p.stopped = true
		for _, c := range p.open {
			c.Close()
		}
		c := p.c
		p.mu.Unlock()
		close(p.stop)
		p.wg.Wait()
		if c != nil {
			c.Close()
			<-p.read
		}
	})
}

// Answered reports whether echo seq was answered (at any time).
func (p *Pinger) Answered(seq uint16) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	_, ok := p.got[seq]
	return ok
}

// Lost counts the echoes sent more than grace ago, and those of them
// unanswered (an answer that came late counts as answered).
func (p *Pinger) Lost(grace time.Duration) (lost, sent int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for seq, at := range p.sent {
		if time.Since(at) < grace {
			continue
		}
		sent++
		if _, ok := p.got[seq]; !ok {
			lost++
		}
	}
	return lost, sent
}

// FirstAnswer finds, among the echoes sent at or after after and
// answered within within of being sent (0: whenever), the one answered
// first, and returns when it was sent and when its answer came.
func (p *Pinger) FirstAnswer(after time.Time, within time.Duration) (sent, got time.Time, ok bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for seq, at := range p.sent {
		if at.Before(after) {
			continue
		}
		g, answered := p.got[seq]
		if !answered || (within > 0 && g.Sub(at) > within) {
			continue
		}
		if !ok || g.Before(got) {
			sent, got, ok = at, g, true
		}
	}
	return sent, got, ok
}

// FirstReplyAfter returns when the first reply that came after t came,
// whenever its echo was sent.
func (p *Pinger) FirstReplyAfter(t time.Time) (got time.Time, ok bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, g := range p.got {
		if g.After(t) && (!ok || g.Before(got)) {
			got, ok = g, true
		}
	}
	return got, ok
}

// LastReply returns when the latest reply came (zero before any).
func (p *Pinger) LastReply() time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	var last time.Time
	for _, g := range p.got {
		if g.After(last) {
			last = g
		}
	}
	return last
}

// Replies is how many echoes have been answered.
func (p *Pinger) Replies() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.got)
}
