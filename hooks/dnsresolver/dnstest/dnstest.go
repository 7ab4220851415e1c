// Package dnstest is a tiny authoritative DNS server for tests: it answers
// A and AAAA questions from a zone the test changes at run time, over UDP
// and TCP, and counts the questions it was asked.
package dnstest

import (
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/dns/dnsmessage"
)

// Server answers from its zone. Create it with Serve.
type Server struct {
	udp  net.PacketConn
	tcp  net.Listener
	mu   sync.Mutex
	zone map[string]record
	// Queries counts questions answered.
	Queries atomic.Uint64
	// Truncate makes UDP answers with more than this many records come
	// back truncated (0: never), to exercise the TCP fall-back.
	Truncate atomic.Int32
	wg       sync.WaitGroup
}

type record struct {
	addrs []netip.Addr
	ttl   uint32
}

// Serve answers on udp and, when tcp is non-nil, on tcp, until Close.
func Serve(udp net.PacketConn, tcp net.Listener) *Server {
	s := &Server{udp: udp, tcp: tcp, zone: map[string]record{}}
	s.wg.Add(1)
	go s.serveUDP()
	if tcp != nil {
		s.wg.Add(1)
		go s.serveTCP()
	}
	return s
}

// Set makes name resolve to addrs with the given TTL; no addrs removes it
// (NXDOMAIN).
func (s *Server) Set(name string, ttl time.Duration, addrs ...netip.Addr) {
	s.mu.Lock()
	defer s.mu.Unlock()
	key := strings.ToLower(strings.TrimSuffix(name, ".")) + "."
	if len(addrs) == 0 {
		delete(s.zone, key)
		return
	}
	s.zone[key] = record{addrs: append([]netip.Addr(nil), addrs...), ttl: uint32(ttl / time.Second)}
}

// Addr returns the UDP address the server answers on.
func (s *Server) Addr() netip.AddrPort {
	return s.udp.LocalAddr().(*net.UDPAddr).AddrPort()
}

// Close stops the server and waits for its goroutines.
func (s *Server) Close() {
	s.udp.Close()
	if s.tcp != nil {
		s.tcp.Close()
	}
	s.wg.Wait()
}

func (s *Server) serveUDP() {
	defer s.wg.Done()
	buf := make([]byte, 1500)
	for {
		n, from, err := s.udp.ReadFrom(buf)
		if err != nil {
			return
		}
		if reply := s.answer(buf[:n], true); reply != nil {
			s.udp.WriteTo(reply, from)
		}
	}
}

func (s *Server) serveTCP() {
	defer s.wg.Done()
	for {
		c, err := s.tcp.Accept()
		if err != nil {
			return
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer c.Close()
			c.SetDeadline(time.Now().Add(5 * time.Second))
			var lb [2]byte
			if _, err := io.ReadFull(c, lb[:]); err != nil {
				return
			}
			q := make([]byte, binary.BigEndian.Uint16(lb[:]))
			if _, err := io.ReadFull(c, q); err != nil {
				return
			}
			reply := s.answer(q, false)
			if reply == nil {
				return
			}
			out := binary.BigEndian.AppendUint16(nil, uint16(len(reply)))
			c.Write(append(out, reply...))
		}()
	}
}

var errBadQuery = errors.New("bad query")

func (s *Server) answer(query []byte, udp bool) []byte {
	var p dnsmessage.Parser
	h, err := p.Start(query)
	if err != nil {
		return nil
	}
	q, err := p.Question()
	if err != nil {
		return nil
	}
	s.Queries.Add(1)
	s.mu.Lock()
	rec, ok := s.zone[strings.ToLower(q.Name.String())]
	s.mu.Unlock()
	rh := dnsmessage.Header{ID: h.ID, Response: true, Authoritative: true, RecursionDesired: h.RecursionDesired}
	if !ok {
		rh.RCode = dnsmessage.RCodeNameError
	}
	var answers []netip.Addr
	for _, a := range rec.addrs {
		if (q.Type == dnsmessage.TypeA && a.Is4()) || (q.Type == dnsmessage.TypeAAAA && a.Is6()) {
			answers = append(answers, a)
		}
	}
	if t := s.Truncate.Load(); udp && t > 0 && len(answers) > int(t) {
		rh.Truncated = true
		answers = nil
	}
	b := dnsmessage.NewBuilder(nil, rh)
	if b.StartQuestions() != nil || b.Question(q) != nil || b.StartAnswers() != nil {
		return nil
	}
	for _, a := range answers {
		hdr := dnsmessage.ResourceHeader{Name: q.Name, Class: dnsmessage.ClassINET, TTL: rec.ttl}
		if a.Is4() {
			err = b.AResource(hdr, dnsmessage.AResource{A: a.As4()})
		} else {
			err = b.AAAAResource(hdr, dnsmessage.AAAAResource{AAAA: a.As16()})
		}
		if err != nil {
			return nil
		}
	}
	out, err := b.Finish()
	if err != nil {
		return nil
	}
	return out
}
