package testkit

// Pinger: numbered ICMP echoes through a tunnel on one socket, recording
// when each was sent and answered, so a test counts losses exactly and
// finds when traffic flowed again.

import (
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"
)

// Pinger sends numbered echoes from one node to one tunnel address, by
// hand (Send) or on a clock (Every), and records the replies. It is safe
// for concurrent use and stops at the test's Cleanup.
type Pinger struct {
	c    net.Conn
	mu   sync.Mutex
	sent map[uint16]time.Time
	got  map[uint16]time.Time
	seq  uint16
	read chan struct{} // closed when the reader ends

	stopOnce sync.Once
	stop     chan struct{} // closed by Stop
	ticking  sync.WaitGroup
}

// NewPinger opens an ICMP socket on from's netstack towards to.
func NewPinger(tb testing.TB, from *Node, to netip.Addr) *Pinger {
	tb.Helper()
	c, err := from.Net.DialPingAddr(netip.Addr{}, to)
	if err != nil {
		tb.Fatal(err)
	}
	p := &Pinger{c: c, sent: map[uint16]time.Time{}, got: map[uint16]time.Time{}, read: make(chan struct{}), stop: make(chan struct{})}
	go p.reader()
	tb.Cleanup(p.Stop)
	return p
}

func (p *Pinger) reader() {
	defer close(p.read)
	buf := make([]byte, 1500)
	for {
		n, err := p.c.Read(buf)
		if err != nil {
			return
		}
		if n >= 8 && buf[0] == 0 { // echo reply
			seq := uint16(buf[6])<<8 | uint16(buf[7])
			p.mu.Lock()
			if _, ok := p.got[seq]; !ok {
				p.got[seq] = time.Now()
			}
			p.mu.Unlock()
		}
	}
}

// Send sends the next echo and returns its sequence number.
func (p *Pinger) Send() uint16 {
	p.mu.Lock()
	p.seq++
	seq := p.seq
	p.sent[seq] = time.Now()
	p.mu.Unlock()
	p.c.Write([]byte{8, 0, 0, 0, 0x77, 0x67, byte(seq >> 8), byte(seq), 'w', 'g'})
	return seq
}

// Every sends an echo now and then every interval, until Stop.
func (p *Pinger) Every(interval time.Duration) {
	p.ticking.Add(1)
	go func() {
		defer p.ticking.Done()
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for {
			p.Send()
			select {
			case <-p.stop:
				return
			case <-tick.C:
			}
		}
	}()
}

// Stop stops sending and reading and waits for the pinger's goroutines;
// the record stays readable. It is idempotent.
func (p *Pinger) Stop() {
	p.stopOnce.Do(func() {
		close(p.stop)
		p.ticking.Wait()
		p.c.Close()
		<-p.read
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
