package jit

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/wghooks/wghooks/device/feature"
	"github.com/wghooks/wghooks/device/feature/featuretest"
	"github.com/wghooks/wghooks/hooks"
)

// TestFailureLogAggregates: a thousand failures of one kind (lines that
// differ only in the key they name) in five seconds log the first
// failBurst lines as they are and, once the interval ends, one summary of
// the rest; another kind is logged on its own; while they go on, one
// summary per interval; a kind quiet for an interval is logged in full
// again.
func TestFailureLogAggregates(t *testing.T) {
	var lines []string
	logf := func(format string, args ...any) { lines = append(lines, fmt.Sprintf(format, args...)) }
	var f failureLog
	start := time.Date(2026, 5, 22, 12, 0, 0, 0, time.UTC)
	line := func(k feature.Key) string {
		return fmt.Sprintf("jit: %s not installed: failed to look up %s: GET /peers/%s: database is locked",
			feature.ShortKey(k), feature.ShortKey(k), strings.ReplaceAll(feature.EncodeKey(k), "/", "%2F"))
	}
	for i := 0; i < 1000; i++ {
		k := feature.Key{byte(i), byte(i >> 8), 1}
		f.failed(logf, k, line(k), start.Add(time.Duration(i)*5*time.Millisecond))
	}
	if len(lines) != failBurst || lines[0] != line(feature.Key{0, 0, 1}) {
		t.Fatalf("logged %d lines, want the first %d as they are: %q", len(lines), failBurst, lines)
	}
	f.failed(logf, feature.Key{9}, "jit: "+feature.ShortKey(feature.Key{9})+" not installed: provider panicked", start.Add(time.Second))
	if n := len(lines); n != failBurst+1 {
		t.Fatalf("another kind of failure was not logged: %q", lines[failBurst:])
	}
	f.flush(start.Add(9 * time.Second))
	if n := len(lines); n != failBurst+1 {
		t.Fatalf("a summary before the interval ended: %q", lines[failBurst+1:])
	}
	f.flush(start.Add(10 * time.Second))
	want := fmt.Sprintf("jit: %d more lookups failed the same way in the last 10s: ", 1000-failBurst)
	if n := len(lines); n != failBurst+2 || !strings.HasPrefix(lines[n-1], want) || !strings.Contains(lines[n-1], "database is locked") {
		t.Fatalf("summary %q, want one line starting %q", lines[failBurst+1:], want)
	}
	// Still failing: one summary per interval, no burst again.
	for i := 0; i < 100; i++ {
		k := feature.Key{byte(i), 2}
		f.failed(logf, k, line(k), start.Add(11*time.Second))
	}
	f.flush(start.Add(20 * time.Second))
	if n := len(lines); n != failBurst+3 || !strings.HasPrefix(lines[n-1], "jit: 100 more lookups failed the same way in the last 10s: ") {
		t.Fatalf("while failures go on: %q, want one summary of 100", lines[failBurst+2:])
	}
	f.flush(start.Add(30 * time.Second))
	if n := len(lines); n != failBurst+3 {
		t.Fatalf("a summary of nothing: %q", lines[failBurst+3:])
	}
	k := feature.Key{7}
	f.failed(logf, k, line(k), start.Add(41*time.Second))
	if n := len(lines); n != failBurst+4 || lines[n-1] != line(k) {
		t.Fatalf("after a quiet interval the next failure was not logged in full: %q", lines[failBurst+3:])
	}
}

// TestFailingProviderLogsBounded: lookups of many keys that fail the
// same way log the first few lines, not one each.
func TestFailingProviderLogsBounded(t *testing.T) {
	h, _ := featuretest.New(t)
	prov := hooks.ProviderFunc(func(context.Context, hooks.PublicKey) (hooks.PeerConfig, error) {
		return hooks.PeerConfig{}, errors.New("database is locked")
	})
	j := newJIT(h, Config{Provider: prov})
	t.Cleanup(j.Close)
	for i := 0; i < 50; i++ {
		j.provision(feature.Key{byte(i), 1}, netip.MustParseAddrPort("127.0.0.1:1"))
	}
	n := 0
	for _, l := range h.Logs() {
		if strings.Contains(l, "not installed: failed to look up") {
			n++
		}
	}
	if n != failBurst {
		t.Fatalf("%d lines for 50 lookups failing the same way, want %d: %q", n, failBurst, h.Logs())
	}
	if got := j.c.ProviderErrors.Load(); got != 50 {
		t.Errorf("ProviderErrors %d, want every failure counted (50)", got)
	}
}
