package endpoints

// Resolution of hostname endpoints: parsing "host:port", ordering the
// records for happy eyeballs, and when to ask again. The goroutine that
// asks lives in endpoints.go (resolveLoop); everything here is pure.

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/wghooks/wghooks/hooks"
)

// Defaults of Config, documented there.
const (
	defaultMinTTL           = 10 * time.Second
	defaultMaxTTL           = 5 * time.Minute
	defaultUnknownTTL       = time.Minute
	defaultResolveTimeout   = 5 * time.Second
	defaultStagger          = 250 * time.Millisecond
	defaultReplyTimeout     = time.Second
	defaultProbeInterval    = 15 * time.Second
	defaultFailbackInterval = 30 * time.Second
	maxFailbackInterval     = 10 * time.Minute
	// maxCandidates bounds how many records of one name are tried.
	maxCandidates = 16
	// forcedResolveGap is the least time between two re-resolutions that
	// a dead address triggers (about one handshake retry).
	forcedResolveGap = 5 * time.Second
	// maxResolveBackoff caps the wait between failed resolutions.
	maxResolveBackoff = time.Minute
)

// hostPort is a parsed hostname endpoint.
type hostPort struct {
	host string // a DNS name or an IP literal, without brackets
	port uint16
}

func (h hostPort) String() string {
	if strings.Contains(h.host, ":") {
		return "[" + h.host + "]:" + strconv.Itoa(int(h.port))
	}
	return h.host + ":" + strconv.Itoa(int(h.port))
}

// parseHostPort parses "host:port" or "[v6]:port". The host is a DNS name
// (letters, digits, '-', '_' and dots, labels of at most 63 bytes, at most
// 253 bytes) or an IP address; the port is 1..65535.
func parseHostPort(s string) (hostPort, error) {
	fail := func(format string, args ...any) (hostPort, error) {
		return hostPort{}, fmt.Errorf("failed to parse endpoint %q: %s", s, fmt.Sprintf(format, args...))
	}
	i := strings.LastIndexByte(s, ':')
	if i < 0 {
		return fail("missing port (want host:port)")
	}
	host, port := s[:i], s[i+1:]
	if strings.HasPrefix(host, "[") {
		if !strings.HasSuffix(host, "]") {
			return fail("unbalanced '['")
		}
		host = host[1 : len(host)-1]
		a, err := netip.ParseAddr(host)
		if err != nil || !a.Is6() {
			return fail("%q in brackets is not an IPv6 address", host)
		}
	} else if strings.Contains(host, ":") {
		return fail("IPv6 address needs brackets, as in [fd00::1]:51820")
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil || p == 0 {
		return fail("invalid port %q (want 1 to 65535)", port)
	}
	if host == "" {
		return fail("empty host")
	}
	if _, err := netip.ParseAddr(host); err != nil {
		if err := validHostname(host); err != nil {
			return fail("%v", err)
		}
	}
	return hostPort{host: host, port: uint16(p)}, nil
}

func validHostname(h string) error {
	h = strings.TrimSuffix(h, ".")
	if len(h) == 0 || len(h) > 253 {
		return fmt.Errorf("host name of %d bytes (want 1 to 253)", len(h))
	}
	for _, label := range strings.Split(h, ".") {
		if len(label) == 0 || len(label) > 63 {
			return fmt.Errorf("host name label %q of %d bytes (want 1 to 63)", label, len(label))
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_'
			if !ok {
				return fmt.Errorf("invalid character %q in host name", c)
			}
		}
	}
	return nil
}

// happyEyeballsOrder dedupes addrs and orders them as RFC 8305 section 4
// asks: IPv6 first, then the families alternate, each family keeping the
// order the resolver gave. At most maxCandidates are kept; invalid
// addresses are dropped.
func happyEyeballsOrder(addrs []netip.Addr) []netip.Addr {
	var v6, v4 []netip.Addr
	seen := make(map[netip.Addr]bool, len(addrs))
	for _, a := range addrs {
		a = a.Unmap()
		if !a.IsValid() || a.IsUnspecified() || seen[a] {
			continue
		}
		seen[a] = true
		if a.Is4() {
			v4 = append(v4, a)
		} else {
			v6 = append(v6, a)
		}
	}
	out := make([]netip.Addr, 0, len(v4)+len(v6))
	for i := 0; i < len(v4) || i < len(v6); i++ {
		if i < len(v6) {
			out = append(out, v6[i])
		}
		if i < len(v4) {
			out = append(out, v4[i])
		}
	}
	if len(out) > maxCandidates {
		out = out[:maxCandidates]
	}
	return out
}

// nextResolve returns how long an answer with ttl is used before asking
// again: ttl clamped to [minTTL, maxTTL], or unknownTTL (clamped the same
// way) when the resolver gave none.
func nextResolve(ttl, minTTL, maxTTL, unknownTTL time.Duration) time.Duration {
	if ttl <= 0 {
		ttl = unknownTTL
	}
	if ttl < minTTL {
		ttl = minTTL
	}
	if ttl > maxTTL {
		ttl = maxTTL
	}
	return ttl
}

// resolveBackoff returns the wait after the n-th failure in a row
// (n >= 1): 1 s, 2 s, 4 s, ... up to maxResolveBackoff.
func resolveBackoff(n int) time.Duration {
	d := time.Second
	for i := 1; i < n && d < maxResolveBackoff; i++ {
		d *= 2
	}
	if d > maxResolveBackoff {
		d = maxResolveBackoff
	}
	return d
}

// resolveOnce asks r with a deadline and runs the resolver on its own
// goroutine, so one that ignores its context cannot hold the caller
// beyond the deadline. The result is ordered for happy eyeballs.
func resolveOnce(parent context.Context, r hooks.Resolver, host string, timeout time.Duration) ([]netip.Addr, time.Duration, error) {
	if a, err := netip.ParseAddr(host); err == nil {
		return []netip.Addr{a.Unmap()}, 0, nil
	}
	ctx, cancel := context.WithTimeout(parent, timeout)
	defer cancel()
	type result struct {
		ans hooks.Answer
		err error
	}
	ch := make(chan result, 1)
	go func() {
		ans, err := r.Resolve(ctx, host)
		ch <- result{ans, err}
	}()
	var res result
	select {
	case res = <-ch:
	case <-ctx.Done():
		return nil, 0, fmt.Errorf("failed to resolve %q: no answer within %v: %w", host, timeout, ctx.Err())
	}
	if res.err != nil {
		return nil, 0, fmt.Errorf("failed to resolve %q: %w", host, res.err)
	}
	addrs := happyEyeballsOrder(res.ans.Addrs)
	if len(addrs) == 0 {
		return nil, 0, fmt.Errorf("failed to resolve %q: %w", host, errNoRecords)
	}
	return addrs, res.ans.TTL, nil
}

var errNoRecords = errors.New("no A or AAAA records")
