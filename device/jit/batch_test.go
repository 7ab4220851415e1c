package jit

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/wghooks/wghooks/device/feature"
	"github.com/wghooks/wghooks/device/feature/featuretest"
	"github.com/wghooks/wghooks/hooks"
)

// batchProvider is a hooks.BatchProvider over a map that records its
// calls; with gate set, every call waits for it to close.
type batchProvider struct {
	mu      sync.Mutex
	known   map[hooks.PublicKey]hooks.PeerConfig
	single  []hooks.PublicKey   // LookupPeer calls
	batches [][]hooks.PublicKey // LookupPeers calls
	gate    chan struct{}
	answer  func(keys []hooks.PublicKey) ([]hooks.PeerResult, error) // overrides the map for batches
}

func (p *batchProvider) wait(ctx context.Context) error {
	if p.gate == nil {
		return nil
	}
	select {
	case <-p.gate:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (p *batchProvider) LookupPeer(ctx context.Context, k hooks.PublicKey) (hooks.PeerConfig, error) {
	p.mu.Lock()
	p.single = append(p.single, k)
	cfg, ok := p.known[k]
	p.mu.Unlock()
	if err := p.wait(ctx); err != nil {
		return hooks.PeerConfig{}, err
	}
	if !ok {
		return hooks.PeerConfig{}, hooks.ErrUnknownPeer
	}
	return cfg, nil
}

func (p *batchProvider) LookupPeers(ctx context.Context, keys []hooks.PublicKey) ([]hooks.PeerResult, error) {
	p.mu.Lock()
	p.batches = append(p.batches, slices.Clone(keys))
	answer := p.answer
	out := make([]hooks.PeerResult, len(keys))
	for i, k := range keys {
		if cfg, ok := p.known[k]; ok {
			out[i].Config = cfg
		} else {
			out[i].Err = hooks.ErrUnknownPeer
		}
	}
	p.mu.Unlock()
	if err := p.wait(ctx); err != nil {
		return nil, err
	}
	if answer != nil {
		return answer(keys)
	}
	return out, nil
}

func (p *batchProvider) calls() (single []hooks.PublicKey, batches [][]hooks.PublicKey) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.single), slices.Clone(p.batches)
}

func hostPrefix(i int) []netip.Prefix {
	return []netip.Prefix{netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 18, 2, byte(i)}), 32)}
}

// newBatchJIT is a feature whose installs the host applies
// (configuringHost), over provider p.
func newBatchJIT(t *testing.T, p hooks.Provider, cfg Config) (*JIT, *configuringHost) {
	ft, _ := featuretest.New(t)
	h := &configuringHost{Host: ft, t: t}
	cfg.Provider = p
	j := newJIT(h, cfg)
	h.j = j
	t.Cleanup(j.Close)
	return j, h
}

func misses(keys ...feature.Key) []miss {
	out := make([]miss, len(keys))
	for i, k := range keys {
		out[i] = miss{key: k, src: netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, byte(i + 1)}), 1)}
	}
	return out
}

// TestBatchKeepsEveryRule: a batch is asked in one LookupPeers call and
// installed in one Host.Configure, and each key still meets the rules of
// a first install on its own: an unknown key is refused and cached
// negative, a static peer's key is refused, an answer taking a static
// peer's route is refused, an invalid answer fails; the rest are
// installed and just in time.
func TestBatchKeepsEveryRule(t *testing.T) {
	p := &batchProvider{known: map[hooks.PublicKey]hooks.PeerConfig{}}
	var evMu sync.Mutex
	events := map[hooks.PeerEventKind]int{}
	j, h := newBatchJIT(t, p, Config{OnPeerEvent: func(ev hooks.PeerEvent) {
		evMu.Lock()
		defer evMu.Unlock()
		events[ev.Kind]++
	}})
	static := feature.Key{100}
	if err := h.Configure("", feature.Config{Peers: []feature.PeerConfig{{PublicKey: static, AllowedIPs: []netip.Prefix{netip.MustParsePrefix("198.18.7.0/24")}}}}); err != nil {
		t.Fatal(err)
	}
	p.known[hooks.PublicKey(static)] = hooks.PeerConfig{AllowedIPs: hostPrefix(100)}
	var good []feature.Key
	for i := 1; i <= 5; i++ {
		k := feature.Key{byte(i)}
		good = append(good, k)
		p.known[hooks.PublicKey(k)] = hooks.PeerConfig{AllowedIPs: hostPrefix(i)}
	}
	unknown, overlap, invalid := feature.Key{50}, feature.Key{51}, feature.Key{52}
	p.known[hooks.PublicKey(overlap)] = hooks.PeerConfig{AllowedIPs: []netip.Prefix{netip.MustParsePrefix("198.18.7.7/32")}}
	p.known[hooks.PublicKey(invalid)] = hooks.PeerConfig{PublicKey: hooks.PublicKey{53}}
	configsBefore := len(h.Configs)

	keys := append(slices.Clone(good), unknown, static, overlap, invalid)
	j.provisionBatch(misses(keys...))

	single, batches := p.calls()
	if len(single) != 0 || len(batches) != 1 || len(batches[0]) != len(keys) {
		t.Fatalf("provider asked %d keys one by one and %d batches, want one batch of %d", len(single), len(batches), len(keys))
	}
	if n := len(h.Configs) - configsBefore; n != 1 || len(h.Configs[configsBefore].Peers) != len(good) {
		t.Fatalf("%d transactions installed the batch, want one of %d peers", n, len(good))
	}
	for _, k := range good {
		if !j.isJIT(k) {
			t.Errorf("%v not installed", k)
		}
	}
	for _, k := range []feature.Key{unknown, overlap, invalid} {
		if j.isJIT(k) || h.HasPeer(k) {
			t.Errorf("%v installed", k)
		}
	}
	if j.isJIT(static) {
		t.Error("the static peer became just in time")
	}
	j.mu.Lock()
	_, negative := j.negative[unknown]
	j.mu.Unlock()
	if !negative {
		t.Error("the unknown key is not in the negative cache")
	}
	if got := j.c.PeersInstalled.Load(); got != uint64(len(good)) {
		t.Errorf("PeersInstalled %d, want %d", got, len(good))
	}
	if got := j.c.ProviderLookups.Load(); got != uint64(len(keys)) {
		t.Errorf("ProviderLookups %d, want one per key (%d)", got, len(keys))
	}
	evMu.Lock()
	defer evMu.Unlock()
	if events[hooks.PeerInstalled] != len(good) || events[hooks.PeerRefused] != 1 || events[hooks.PeerLookupFailed] != 3 {
		t.Errorf("events %v, want %d installed, 1 refused, 3 failed", events, len(good))
	}
}

// TestBatchGathersOnlyWhatWaits: a lone miss is asked about at once, on
// its own; so is a second while the first is under way (two batchers);
// the misses that arrive while both are busy are asked together when one
// is free.
func TestBatchGathersOnlyWhatWaits(t *testing.T) {
	p := &batchProvider{known: map[hooks.PublicKey]hooks.PeerConfig{}, gate: make(chan struct{})}
	j, h := newBatchJIT(t, p, Config{})
	keys := make([]feature.Key, 5)
	for i := range keys {
		keys[i] = feature.Key{byte(i + 1)}
		p.known[hooks.PublicKey(keys[i])] = hooks.PeerConfig{AllowedIPs: hostPrefix(i + 1)}
	}
	queue := func(ks ...feature.Key) {
		for _, m := range misses(ks...) {
			j.mu.Lock()
			j.provisioning[m.key] = struct{}{}
			start := j.queueMissLocked(m)
			j.mu.Unlock()
			if start {
				h.Go(j.batchLoop)
			}
		}
	}
	asked := func(n int) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
			if single, _ := p.calls(); len(single) >= n {
				return
			}
		}
		t.Fatalf("the provider was not asked about %d keys", n)
	}
	queue(keys[0])
	asked(1)
	queue(keys[1])
	asked(2)
	queue(keys[2:]...)
	close(p.gate)
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		if j.c.PeersInstalled.Load() == uint64(len(keys)) {
			break
		}
	}
	single, batches := p.calls()
	if !slices.Equal(single, []hooks.PublicKey{hooks.PublicKey(keys[0]), hooks.PublicKey(keys[1])}) {
		t.Errorf("asked one by one %v, want the first two keys", single)
	}
	if len(batches) != 1 || len(batches[0]) != 3 {
		t.Fatalf("batches %v, want the three keys that waited, together", batches)
	}
	for _, k := range keys {
		if !j.isJIT(k) {
			t.Errorf("%v not installed", k)
		}
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if len(j.pending) != 0 || len(j.provisioning) != 0 {
		t.Errorf("left behind: %d pending, %d provisioning", len(j.pending), len(j.provisioning))
	}
}

// TestBatchProviderFailure: a batch call that fails, or answers the
// wrong number of keys, fails every key of it (retried after ErrorRetry)
// and installs nothing.
func TestBatchProviderFailure(t *testing.T) {
	for name, answer := range map[string]func([]hooks.PublicKey) ([]hooks.PeerResult, error){
		"error": func([]hooks.PublicKey) ([]hooks.PeerResult, error) { return nil, errors.New("connection refused") },
		"short list": func(keys []hooks.PublicKey) ([]hooks.PeerResult, error) {
			return make([]hooks.PeerResult, len(keys)-1), nil
		},
		"panic": func([]hooks.PublicKey) ([]hooks.PeerResult, error) { panic("bug") },
	} {
		t.Run(name, func(t *testing.T) {
			p := &batchProvider{known: map[hooks.PublicKey]hooks.PeerConfig{}, answer: answer}
			j, h := newBatchJIT(t, p, Config{ErrorRetry: time.Hour})
			keys := []feature.Key{{1}, {2}, {3}}
			for i, k := range keys {
				p.known[hooks.PublicKey(k)] = hooks.PeerConfig{AllowedIPs: hostPrefix(i)}
			}
			j.provisionBatch(misses(keys...))
			if len(h.Configs) != 0 {
				t.Fatalf("a failed batch configured %v", h.Configs)
			}
			if got := j.c.ProviderErrors.Load(); got != uint64(len(keys)) {
				t.Errorf("ProviderErrors %d, want one per key", got)
			}
			j.mu.Lock()
			defer j.mu.Unlock()
			for _, k := range keys {
				if until, ok := j.negative[k]; !ok || time.Until(until) < 30*time.Minute {
					t.Errorf("%v not held off for ErrorRetry", k)
				}
			}
		})
	}
}

// TestBatchWithoutBatchProvider: a provider without LookupPeers is asked
// about each key of a batch concurrently, within MaxLookups at once.
func TestBatchWithoutBatchProvider(t *testing.T) {
	const bound = 3
	var mu sync.Mutex
	inflight, most := 0, 0
	full := make(chan struct{})
	var fullOnce sync.Once // later calls reach the bound again
	prov := hooks.ProviderFunc(func(ctx context.Context, k hooks.PublicKey) (hooks.PeerConfig, error) {
		mu.Lock()
		inflight++
		most = max(most, inflight)
		if inflight == bound {
			fullOnce.Do(func() { close(full) })
		}
		mu.Unlock()
		select { // the first ones wait until the bound is reached
		case <-full:
		case <-ctx.Done():
		}
		mu.Lock()
		inflight--
		mu.Unlock()
		return hooks.PeerConfig{AllowedIPs: hostPrefix(int(k[0]))}, nil
	})
	j, h := newBatchJIT(t, prov, Config{MaxLookups: bound})
	keys := make([]feature.Key, 8)
	for i := range keys {
		keys[i] = feature.Key{byte(i + 1)}
	}
	j.provisionBatch(misses(keys...))
	if most != bound {
		t.Errorf("%d lookups at once, want %d (MaxLookups)", most, bound)
	}
	if got := j.c.PeersInstalled.Load(); got != uint64(len(keys)) || len(h.Configs) != 1 {
		t.Errorf("%d installed in %d transactions, want %d in one", got, len(h.Configs), len(keys))
	}
}

// TestBatchCap: installing a batch first evicts the least recently
// active just-in-time peers, never one of the batch, and a batch larger
// than the cap installs only what fits.
func TestBatchCap(t *testing.T) {
	p := &batchProvider{known: map[hooks.PublicKey]hooks.PeerConfig{}}
	j, _ := newBatchJIT(t, p, Config{MaxPeers: 3})
	for i := 1; i <= 10; i++ {
		p.known[hooks.PublicKey{byte(i)}] = hooks.PeerConfig{AllowedIPs: hostPrefix(i)}
	}
	old1, old2 := feature.Key{1}, feature.Key{2}
	j.provisionBatch(misses(old1, old2))
	j.mu.Lock()
	j.peers[old1].lastActive = time.Now().Add(-time.Hour) // the least active
	j.mu.Unlock()

	// old2 is asked again (an update) with two new keys: only old1 goes.
	j.provisionBatch(misses(old2, feature.Key{3}, feature.Key{4}))
	if j.isJIT(old1) {
		t.Error("the least active peer was not evicted")
	}
	for _, k := range []feature.Key{old2, {3}, {4}} {
		if !j.isJIT(k) {
			t.Errorf("%v not installed", k)
		}
	}
	// Five new keys, cap 3: three fit after evicting the other three.
	j.provisionBatch(misses(feature.Key{5}, feature.Key{6}, feature.Key{7}, feature.Key{8}, feature.Key{9}))
	j.mu.Lock()
	n := len(j.peers)
	j.mu.Unlock()
	if n != 3 {
		t.Fatalf("%d just-in-time peers, want the cap (3)", n)
	}
}

// TestBatchMergesWithLookupUnderWay: a key of a batch that another ask
// (revalidation, a restore) is already looking up is not asked again: the
// batch waits for that answer and asks only for the rest.
func TestBatchMergesWithLookupUnderWay(t *testing.T) {
	p := &batchProvider{known: map[hooks.PublicKey]hooks.PeerConfig{}, gate: make(chan struct{})}
	j, _ := newBatchJIT(t, p, Config{})
	k1, k2, k3 := feature.Key{1}, feature.Key{2}, feature.Key{3}
	for i, k := range []feature.Key{k1, k2, k3} {
		p.known[hooks.PublicKey(k)] = hooks.PeerConfig{AllowedIPs: hostPrefix(i + 1)}
	}
	other := make(chan error, 1)
	go func() {
		_, err := j.lookup(k1)
		other <- err
	}()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		if single, _ := p.calls(); len(single) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the first lookup never reached the provider")
		}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		j.provisionBatch(misses(k1, k2, k3))
	}()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		if _, batches := p.calls(); len(batches) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the batch never reached the provider")
		}
	}
	close(p.gate)
	<-done
	if err := <-other; err != nil {
		t.Fatal(err)
	}
	single, batches := p.calls()
	if len(single) != 1 || len(batches) != 1 || !slices.Equal(batches[0], []hooks.PublicKey{hooks.PublicKey(k2), hooks.PublicKey(k3)}) {
		t.Fatalf("asked %v one by one and %v in batches; want k1 once (the ask under way) and a batch of k2, k3", single, batches)
	}
	for _, k := range []feature.Key{k1, k2, k3} {
		if !j.isJIT(k) {
			t.Errorf("%v not installed", k)
		}
	}
}
