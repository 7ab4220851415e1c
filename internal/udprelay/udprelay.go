// Package udprelay stands in for the addresses of one UDP server in tests
// and demos: each relay listens on one address and relays datagrams to the
// real server and back, and can be cut (dropping everything, both ways,
// like a dead path) and restored, or impaired with random loss, delay and
// jitter (impair.go).
package udprelay

import (
	"errors"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
)

// Relay relays between clients of one address and a target.
type Relay struct {
	Addr   netip.AddrPort // where it listens
	listen *net.UDPConn
	fwd    *net.UDPConn
	target netip.AddrPort
	alive  atomic.Bool
	client atomic.Pointer[netip.AddrPort]
	in     atomic.Int64
	out    atomic.Int64
	wg     sync.WaitGroup
	once   sync.Once
	imp    impairer
}

// Cut drops everything from now on; Restore relays again.
func (r *Relay) Cut()     { r.alive.Store(false) }
func (r *Relay) Restore() { r.alive.Store(true) }

// In and Out count datagrams relayed towards the target and back.
func (r *Relay) In() int64  { return r.in.Load() }
func (r *Relay) Out() int64 { return r.out.Load() }

// Start starts one relay per address, all on the same port (a hostname
// endpoint's records share its port), relaying to target. The relays of
// addresses in dead start cut. Close each relay when done.
func Start(target netip.AddrPort, addrs []string, dead ...string) (uint16, map[string]*Relay, error) {
	for attempt := 0; attempt < 20; attempt++ {
		relays := map[string]*Relay{}
		var port uint16
		var err error
		for _, a := range addrs {
			var ip netip.Addr
			if ip, err = netip.ParseAddr(a); err != nil {
				return 0, nil, err
			}
			var l *net.UDPConn
			if l, err = net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(ip, port))); err != nil {
				break
			}
			if port == 0 {
				port = uint16(l.LocalAddr().(*net.UDPAddr).Port)
			}
			network := "udp4"
			if target.Addr().Is6() {
				network = "udp6"
			}
			f, ferr := net.ListenUDP(network, nil)
			if ferr != nil {
				l.Close()
				err = ferr
				break
			}
			r := &Relay{Addr: netip.AddrPortFrom(ip, port), listen: l, fwd: f, target: target}
			r.alive.Store(true)
			relays[a] = r
		}
		if err != nil {
			for _, r := range relays {
				r.Close()
			}
			continue
		}
		for _, d := range dead {
			if r, ok := relays[d]; ok {
				r.Cut()
			}
		}
		for _, r := range relays {
			r.start()
		}
		return port, relays, nil
	}
	return 0, nil, errors.New("failed to find a UDP port free on every relay address")
}

func (r *Relay) start() {
	r.wg.Add(2)
	go func() {
		defer r.wg.Done()
		buf := make([]byte, 65536)
		for {
			n, from, err := r.listen.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			if !r.alive.Load() {
				continue
			}
			r.client.Store(&from)
			r.in.Add(1)
			r.forward(buf[:n], func(b []byte) { r.fwd.WriteToUDPAddrPort(b, r.target) })
		}
	}()
	go func() {
		defer r.wg.Done()
		buf := make([]byte, 65536)
		for {
			n, _, err := r.fwd.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			c := r.client.Load()
			if !r.alive.Load() || c == nil {
				continue
			}
			r.out.Add(1)
			to := *c
			r.forward(buf[:n], func(b []byte) { r.listen.WriteToUDPAddrPort(b, to) })
		}
	}()
}

// Close stops the relay and waits for its goroutines and the datagrams
// it holds (dropped). Idempotent.
func (r *Relay) Close() {
	r.once.Do(func() {
		r.alive.Store(false)
		r.listen.Close()
		r.fwd.Close()
		r.wg.Wait()
	})
}
