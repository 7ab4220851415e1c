// Package dnsresolver is wghooks' default hooks.Resolver: a small DNS
// client that asks the system's name servers for A and AAAA records and
// reports their TTL, so hostname endpoints are re-resolved when the
// records say, not on a guess.
//
// The standard library's resolver does not expose TTLs, so this client
// reads the name servers from /etc/resolv.conf itself and speaks DNS over
// UDP (falling back to TCP when an answer is truncated). Names it cannot
// answer (no name server, a name without a dot that the search list must
// complete, NXDOMAIN for a name /etc/hosts knows, a server that does not
// answer) go to net.Resolver, whose answer carries no TTL.
package dnsresolver

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/net/dns/dnsmessage"

	"github.com/wghooks/wghooks/hooks"
)

// Resolver asks DNS servers for A and AAAA records. The zero value uses
// the name servers of /etc/resolv.conf.
type Resolver struct {
	// Servers are the DNS servers to ask, in order. Default: the
	// nameserver lines of ResolvConf, port 53.
	Servers []netip.AddrPort

	// ResolvConf is the file read when Servers is empty. Default:
	// /etc/resolv.conf (re-read on every resolution, so a change applies
	// at once).
	ResolvConf string

	// TryTimeout bounds one query to one server. Default: 2 s.
	TryTimeout time.Duration

	// NoFallback disables the fall-back to net.Resolver, for tests that
	// must see the DNS server's own answer.
	NoFallback bool
}

var _ hooks.Resolver = (*Resolver)(nil)

// ErrNoRecords reports a name that exists but has neither A nor AAAA
// records, or does not exist.
var ErrNoRecords = errors.New("no A or AAAA records")

// Resolve returns every A and AAAA record of host with the smallest TTL
// among them.
func (r *Resolver) Resolve(ctx context.Context, host string) (hooks.Answer, error) {
	host = strings.TrimSuffix(host, ".")
	if a, err := netip.ParseAddr(host); err == nil {
		return hooks.Answer{Addrs: []netip.Addr{a.Unmap()}}, nil
	}
	servers := r.Servers
	var confErr error
	if len(servers) == 0 {
		servers, confErr = readResolvConf(r.resolvConf())
	}
	var dnsErr error
	if len(servers) > 0 && strings.Contains(host, ".") {
		ans, err := r.query(ctx, servers, host)
		if err == nil && len(ans.Addrs) > 0 {
			return ans, nil
		}
		if err == nil {
			err = ErrNoRecords
		}
		dnsErr = err
	} else if confErr != nil {
		dnsErr = confErr
	}
	if r.NoFallback || ctx.Err() != nil {
		if dnsErr == nil {
			dnsErr = ErrNoRecords
		}
		return hooks.Answer{}, fmt.Errorf("failed to resolve %q: %w", host, dnsErr)
	}
	addrs, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		if dnsErr != nil {
			err = errors.Join(dnsErr, err)
		}
		return hooks.Answer{}, fmt.Errorf("failed to resolve %q: %w", host, err)
	}
	for i := range addrs {
		addrs[i] = addrs[i].Unmap()
	}
	return hooks.Answer{Addrs: addrs}, nil
}

func (r *Resolver) resolvConf() string {
	if r.ResolvConf != "" {
		return r.ResolvConf
	}
	return "/etc/resolv.conf"
}

func (r *Resolver) tryTimeout() time.Duration {
	if r.TryTimeout > 0 {
		return r.TryTimeout
	}
	return 2 * time.Second
}

// readResolvConf returns the nameserver lines of path.
func readResolvConf(path string) ([]netip.AddrPort, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("failed to read name servers: %w", err)
	}
	defer f.Close()
	var out []netip.AddrPort
	sc := bufio.NewScanner(io.LimitReader(f, 1<<20))
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 2 || fields[0] != "nameserver" {
			continue
		}
		// Zones (fe80::1%eth0) are kept: netip parses them.
		if a, err := netip.ParseAddr(fields[1]); err == nil {
			out = append(out, netip.AddrPortFrom(a, 53))
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("failed to read name servers: none in %q", path)
	}
	return out, nil
}

// query asks each server in turn for A and AAAA, both at once, until one
// answers both.
func (r *Resolver) query(ctx context.Context, servers []netip.AddrPort, host string) (hooks.Answer, error) {
	name, err := dnsmessage.NewName(host + ".")
	if err != nil {
		return hooks.Answer{}, fmt.Errorf("invalid host name %q: %w", host, err)
	}
	var errs []error
	for _, srv := range servers {
		if ctx.Err() != nil {
			break
		}
		var (
			wg      sync.WaitGroup
			results [2]queryResult
		)
		for i, typ := range []dnsmessage.Type{dnsmessage.TypeAAAA, dnsmessage.TypeA} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				results[i] = r.ask(ctx, srv, name, typ)
			}()
		}
		wg.Wait()
		var ans hooks.Answer
		failed := false
		for _, res := range results {
			if res.err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", srv, res.err))
				failed = true
				continue
			}
			ans.Addrs = append(ans.Addrs, res.addrs...)
			if res.ttl > 0 && (ans.TTL == 0 || res.ttl < ans.TTL) {
				ans.TTL = res.ttl
			}
		}
		if !failed {
			return ans, nil
		}
	}
	if len(errs) == 0 {
		errs = append(errs, ctx.Err())
	}
	return hooks.Answer{}, errors.Join(errs...)
}

type queryResult struct {
	addrs []netip.Addr
	ttl   time.Duration
	err   error
}

// errNameError is an authoritative "no such name" (RCODE 3): not worth
// asking the next server.
var errNameError = errors.New("no such host (NXDOMAIN)")

func (r *Resolver) ask(ctx context.Context, srv netip.AddrPort, name dnsmessage.Name, typ dnsmessage.Type) queryResult {
	var idb [2]byte
	rand.Read(idb[:])
	id := binary.BigEndian.Uint16(idb[:])
	b := dnsmessage.NewBuilder(make([]byte, 2, 512), dnsmessage.Header{ID: id, RecursionDesired: true})
	b.EnableCompression()
	q := dnsmessage.Question{Name: name, Type: typ, Class: dnsmessage.ClassINET}
	if err := b.StartQuestions(); err != nil {
		return queryResult{err: err}
	}
	if err := b.Question(q); err != nil {
		return queryResult{err: err}
	}
	if err := b.StartAdditionals(); err != nil {
		return queryResult{err: err}
	}
	var opt dnsmessage.ResourceHeader
	if err := opt.SetEDNS0(1232, dnsmessage.RCodeSuccess, false); err != nil {
		return queryResult{err: err}
	}
	if err := b.OPTResource(opt, dnsmessage.OPTResource{}); err != nil {
		return queryResult{err: err}
	}
	msg, err := b.Finish()
	if err != nil {
		return queryResult{err: err}
	}
	// msg[:2] is room for TCP's length prefix.
	binary.BigEndian.PutUint16(msg[:2], uint16(len(msg)-2))

	tctx, cancel := context.WithTimeout(ctx, r.tryTimeout())
	defer cancel()
	reply, err := exchange(tctx, "udp", srv, msg[2:])
	if err == nil {
		var res queryResult
		var truncated bool
		res, truncated = parseReply(reply, id, q)
		if !truncated {
			return res
		}
		reply, err = exchange(tctx, "tcp", srv, msg)
		if err == nil {
			res, _ = parseReply(reply, id, q)
			return res
		}
	}
	return queryResult{err: err}
}

// exchange sends one query and reads one reply. Over TCP, query carries
// its length prefix and the reply's is stripped.
func exchange(ctx context.Context, network string, srv netip.AddrPort, query []byte) ([]byte, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, network, srv.String())
	if err != nil {
		return nil, err
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Now()) })
	defer stop()
	if _, err := c.Write(query); err != nil {
		return nil, err
	}
	if network == "tcp" {
		var lb [2]byte
		if _, err := io.ReadFull(c, lb[:]); err != nil {
			return nil, err
		}
		buf := make([]byte, binary.BigEndian.Uint16(lb[:]))
		if _, err := io.ReadFull(c, buf); err != nil {
			return nil, err
		}
		return buf, nil
	}
	buf := make([]byte, 4096)
	for {
		n, err := c.Read(buf)
		if err != nil {
			return nil, err
		}
		// Skip stray datagrams that are not a reply to this query.
		if n >= 2 && binary.BigEndian.Uint16(buf[:2]) == binary.BigEndian.Uint16(query[:2]) {
			return buf[:n], nil
		}
	}
}

// parseReply reads the addresses of q's type from a reply, following
// CNAMEs inside the answer section (a recursive server puts the chain
// there).
func parseReply(reply []byte, id uint16, q dnsmessage.Question) (res queryResult, truncated bool) {
	var p dnsmessage.Parser
	h, err := p.Start(reply)
	if err != nil {
		return queryResult{err: fmt.Errorf("failed to parse DNS reply: %w", err)}, false
	}
	if h.ID != id || !h.Response {
		return queryResult{err: errors.New("failed to parse DNS reply: not a reply to the query")}, false
	}
	if h.Truncated {
		return queryResult{}, true
	}
	switch h.RCode {
	case dnsmessage.RCodeSuccess:
	case dnsmessage.RCodeNameError:
		return queryResult{err: errNameError}, false
	default:
		return queryResult{err: fmt.Errorf("DNS server answered %v", h.RCode)}, false
	}
	qs, err := p.AllQuestions()
	if err != nil || len(qs) != 1 || !strings.EqualFold(qs[0].Name.String(), q.Name.String()) || qs[0].Type != q.Type {
		return queryResult{err: errors.New("failed to parse DNS reply: question does not match")}, false
	}
	want := strings.ToLower(q.Name.String())
	var minTTL uint32
	first := true
	for {
		rh, err := p.AnswerHeader()
		if errors.Is(err, dnsmessage.ErrSectionDone) {
			break
		}
		if err != nil {
			return queryResult{err: fmt.Errorf("failed to parse DNS reply: %w", err)}, false
		}
		owner := strings.ToLower(rh.Name.String())
		switch {
		case rh.Type == dnsmessage.TypeCNAME && owner == want:
			cn, err := p.CNAMEResource()
			if err != nil {
				return queryResult{err: fmt.Errorf("failed to parse DNS reply: %w", err)}, false
			}
			want = strings.ToLower(cn.CNAME.String())
		case rh.Type == dnsmessage.TypeA && q.Type == dnsmessage.TypeA && owner == want:
			a, err := p.AResource()
			if err != nil {
				return queryResult{err: fmt.Errorf("failed to parse DNS reply: %w", err)}, false
			}
			res.addrs = append(res.addrs, netip.AddrFrom4(a.A))
		case rh.Type == dnsmessage.TypeAAAA && q.Type == dnsmessage.TypeAAAA && owner == want:
			a, err := p.AAAAResource()
			if err != nil {
				return queryResult{err: fmt.Errorf("failed to parse DNS reply: %w", err)}, false
			}
			res.addrs = append(res.addrs, netip.AddrFrom16(a.AAAA).Unmap())
		default:
			if err := p.SkipAnswer(); err != nil {
				return queryResult{err: fmt.Errorf("failed to parse DNS reply: %w", err)}, false
			}
			continue
		}
		if first || rh.TTL < minTTL {
			minTTL, first = rh.TTL, false
		}
	}
	if len(res.addrs) > 0 {
		res.ttl = time.Duration(minTTL) * time.Second
		if res.ttl == 0 {
			// A TTL of zero means "do not cache": the device's floor applies.
			res.ttl = time.Nanosecond
		}
	}
	return res, false
}
