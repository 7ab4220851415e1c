// Package featuretest is a feature.Host for unit tests of a feature in
// isolation: an identity, known sources, counters, a peer set and a log
// capture, with no upstream device and nothing sent.
package featuretest

import (
	"crypto/rand"
	"fmt"
	"strings"
	"sync"
	"testing"

	"golang.org/x/crypto/curve25519"
	wgdevice "golang.zx2c4.com/wireguard/device"

	"github.com/wghooks/wghooks/conn"
	"github.com/wghooks/wghooks/device/feature"
	"github.com/wghooks/wghooks/tun"
)

// Host is a feature.Host without a device. Methods that need one
// (Upstream, Bind, TUN, View, Configure) return nil or an error; a test
// that needs them belongs with the device's own tests.
type Host struct {
	counters feature.Counters
	sources  *feature.Sources
	identity *feature.Identity
	done     chan struct{}
	wg       sync.WaitGroup

	mu       sync.Mutex
	peers    map[feature.Key]bool
	logs     []string
	draining bool
	// Configs records what Configure was asked, in order.
	Configs []feature.Config
	// OnConfigure, when set, is called by Configure after recording c
	// (outside the host's lock): a test applies there what the core
	// would (AddPeer).
	OnConfigure func(c feature.Config)
}

var _ feature.Host = (*Host)(nil)

// New returns a host whose identity is a fresh private key, closed at the
// test's end (its goroutines stopped and waited for).
func New(t testing.TB) (*Host, [32]byte) {
	t.Helper()
	var priv [32]byte
	rand.Read(priv[:])
	id, err := feature.NewIdentity(priv)
	if err != nil {
		t.Fatal(err)
	}
	h := &Host{sources: feature.NewSources(), identity: id, done: make(chan struct{}), peers: map[feature.Key]bool{}}
	t.Cleanup(func() {
		close(h.done)
		h.wg.Wait()
	})
	pub, _ := curve25519.X25519(priv[:], curve25519.Basepoint)
	return h, [32]byte(pub)
}

// AddPeer makes pk a configured peer.
func (h *Host) AddPeer(pk feature.Key) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.peers[pk] = true
}

// Logs returns the lines logged so far.
func (h *Host) Logs() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.logs...)
}

func (h *Host) logf(format string, args ...any) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.logs = append(h.logs, fmt.Sprintf(format, args...))
}

func (h *Host) Verbosef(format string, args ...any) { h.logf(format, args...) }
func (h *Host) Errorf(format string, args ...any)   { h.logf(format, args...) }
func (h *Host) Counters() *feature.Counters         { return &h.counters }
func (h *Host) HasPeer(pk feature.Key) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.peers[pk]
}
func (h *Host) PeerKeys() []feature.Key {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []feature.Key
	for k := range h.peers {
		out = append(out, k)
	}
	return out
}
func (h *Host) PeerCount() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.peers)
}
func (h *Host) View() (feature.View, error) {
	return feature.View{}, fmt.Errorf("failed to read device state: featuretest has no device")
}
func (h *Host) Upstream() *wgdevice.Device  { return nil }
func (h *Host) Bind() *conn.Bind            { return nil }
func (h *Host) TUN() *tun.UpDelay           { return nil }
func (h *Host) Identity() *feature.Identity { return h.identity }
func (h *Host) Sources() *feature.Sources   { return h.sources }
func (h *Host) Configure(origin string, c feature.Config) error {
	h.mu.Lock()
	h.Configs = append(h.Configs, c)
	on := h.OnConfigure
	h.mu.Unlock()
	if on != nil {
		on(c)
	}
	return nil
}
func (h *Host) IsUp() bool       { return true }
func (h *Host) Configured() bool { return true }
func (h *Host) SetDraining(on bool) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	was := h.draining
	h.draining = on
	return was
}
func (h *Host) Go(fn func()) {
	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		fn()
	}()
}
func (h *Host) Done() <-chan struct{} { return h.done }

// Logged reports whether a logged line contains s.
func (h *Host) Logged(s string) bool {
	for _, l := range h.Logs() {
		if strings.Contains(l, s) {
			return true
		}
	}
	return false
}
