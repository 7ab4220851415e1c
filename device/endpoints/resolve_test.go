package endpoints

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/wghooks/wghooks/hooks"
)

func TestParseHostPort(t *testing.T) {
	for in, want := range map[string]string{
		"vpn.example.com:51820": "vpn.example.com:51820",
		"[fd00::1]:1":           "[fd00::1]:1",
		"198.18.0.1:65535":      "198.18.0.1:65535",
		"a_b-c.d.:9":            "a_b-c.d.:9",
	} {
		h, err := parseHostPort(in)
		if err != nil || h.String() != want {
			t.Errorf("parseHostPort(%q) = %v, %v; want %s", in, h, err, want)
		}
	}
	for _, bad := range []string{"", "host", "host:", "host:0", "host:65536", ":1", "fd00::1:1", "[198.18.0.1]:1", "[fd00::1:1", "a..b:1", "bad host:1", strings.Repeat("a", 64) + ".com:1", "h=x:1"} {
		if _, err := parseHostPort(bad); err == nil || !strings.Contains(err.Error(), "failed to parse endpoint") {
			t.Errorf("parseHostPort(%q) err = %v", bad, err)
		}
	}
}

func FuzzParseHostPort(f *testing.F) {
	f.Add("vpn.example.com:51820")
	f.Add("[fd00::1]:1")
	f.Fuzz(func(t *testing.T, s string) {
		h, err := parseHostPort(s)
		if err != nil {
			return
		}
		// What parses renders back to something that parses the same,
		// and never carries '=' (UAPI values cannot).
		again, err := parseHostPort(h.String())
		if err != nil || again != h {
			t.Fatalf("%q -> %q -> %v, %v", s, h.String(), again, err)
		}
		if strings.Contains(h.String(), "=") {
			t.Fatalf("%q renders with '='", s)
		}
	})
}

func TestHappyEyeballsOrder(t *testing.T) {
	in := []netip.Addr{
		netip.MustParseAddr("198.18.0.1"), netip.MustParseAddr("198.18.0.2"), netip.MustParseAddr("198.18.0.3"),
		netip.MustParseAddr("fd00::1"), netip.MustParseAddr("::ffff:198.18.0.1"), netip.MustParseAddr("fd00::2"),
		netip.MustParseAddr("0.0.0.0"),
	}
	got := happyEyeballsOrder(in)
	want := "fd00::1 198.18.0.1 fd00::2 198.18.0.2 198.18.0.3"
	var s []string
	for _, a := range got {
		s = append(s, a.String())
	}
	if strings.Join(s, " ") != want {
		t.Fatalf("order = %v, want %s", s, want)
	}
	var many []netip.Addr
	for i := 0; i < 40; i++ {
		many = append(many, netip.AddrFrom4([4]byte{198, 18, 1, byte(i)}))
	}
	if n := len(happyEyeballsOrder(many)); n != maxCandidates {
		t.Errorf("kept %d candidates, want %d", n, maxCandidates)
	}
}

func TestNextResolveClamps(t *testing.T) {
	for _, c := range []struct{ ttl, want time.Duration }{
		{0, time.Minute}, {time.Second, 10 * time.Second}, {time.Minute, time.Minute}, {time.Hour, 5 * time.Minute},
	} {
		if got := nextResolve(c.ttl, defaultMinTTL, defaultMaxTTL, defaultUnknownTTL); got != c.want {
			t.Errorf("nextResolve(%v) = %v, want %v", c.ttl, got, c.want)
		}
	}
	if resolveBackoff(1) != time.Second || resolveBackoff(3) != 4*time.Second || resolveBackoff(50) != maxResolveBackoff {
		t.Error("resolveBackoff")
	}
}

func TestResolveOnceHangingResolver(t *testing.T) {
	hang := hooks.ResolverFunc(func(ctx context.Context, _ string) (hooks.Answer, error) {
		<-ctx.Done()
		return hooks.Answer{}, ctx.Err()
	})
	start := time.Now()
	_, _, err := resolveOnce(context.Background(), hang, "vpn.test", 50*time.Millisecond)
	if err == nil || !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), `"vpn.test"`) {
		t.Fatalf("err = %v", err)
	}
	if time.Since(start) > 2*time.Second {
		t.Fatal("resolveOnce waited past its deadline")
	}
	empty := hooks.ResolverFunc(func(context.Context, string) (hooks.Answer, error) { return hooks.Answer{}, nil })
	if _, _, err := resolveOnce(context.Background(), empty, "vpn.test", time.Second); !errors.Is(err, errNoRecords) {
		t.Fatalf("no records: err = %v", err)
	}
	addrs, _, err := resolveOnce(context.Background(), empty, "fd00::9", time.Second)
	if err != nil || len(addrs) != 1 {
		t.Fatalf("literal: %v %v", addrs, err)
	}
}
