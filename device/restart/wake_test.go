package restart

import (
	"encoding/binary"
	"testing"

	"github.com/wghooks/wghooks/device/feature"
)

func staleWakeData(idx uint32) []byte {
	p := make([]byte, 32)
	p[0] = 4
	binary.LittleEndian.PutUint32(p[4:8], idx)
	return p
}

func TestStaleWakeIndices(t *testing.T) {
	var w staleWake
	w.init()
	defer w.stop()
	data := staleWakeData
	// Inactive before Up: nothing is queued.
	w.sawTransport(data(7), nil)
	if len(w.misses) != 0 {
		t.Fatal("queued while inactive")
	}
	w.reset()
	resp := make([]byte, 92)
	resp[0] = 2
	resp[4] = 42
	w.sawSent(resp)
	w.sawTransport(data(42), nil)
	if len(w.misses) != 0 {
		t.Fatal("data on an index we issued was taken for stale")
	}
	w.sawTransport(data(7), nil)
	w.sawTransport(data(7), nil)
	if len(w.misses) != 1 {
		t.Fatalf("%d stale packets queued for one stale index, want 1", len(w.misses))
	}
	// A new Up forgets the indices of the sessions Down destroyed.
	w.reset()
	<-w.misses
	w.sawTransport(data(42), nil)
	if len(w.misses) != 1 {
		t.Fatal("index from before Up still taken as ours")
	}
}

// BenchmarkStaleWakeCheck is the per-packet cost of the stale-session
// check while its window is open: one flow (the common case, two atomic
// loads) and 64 interleaved flows (a map lookup per packet).
func BenchmarkStaleWakeCheck(b *testing.B) {
	for _, flows := range []int{1, 64} {
		b.Run(map[int]string{1: "one-flow", 64: "64-flows"}[flows], func(b *testing.B) {
			var w staleWake
			w.init()
			defer w.stop()
			w.reset()
			packets := make([][]byte, flows)
			for i := range packets {
				resp := make([]byte, 92)
				resp[0] = 2
				binary.LittleEndian.PutUint32(resp[4:8], uint32(1000+i))
				w.sawSent(resp)
				packets[i] = staleWakeData(uint32(1000 + i))
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				w.sawTransport(packets[i%flows], nil)
			}
		})
	}
}

// TestStaleWakeLearnConcurrently: the broadcast and the wake goroutine
// both refresh the endpoint map; under -race this failed while learn read
// the map outside its lock to tell whether the wake was on.
func TestStaleWakeLearnConcurrently(t *testing.T) {
	var w staleWake
	w.init()
	defer w.stop()
	v := &feature.View{Peers: []feature.PeerView{{PublicKey: feature.Key{1}, Endpoint: "198.18.0.1:51820"}}}
	done := make(chan struct{})
	for range 2 {
		go func() {
			defer func() { done <- struct{}{} }()
			for range 200 {
				w.learn(v)
			}
		}()
	}
	<-done
	<-done
	if pk, ok, _ := w.peerAt("198.18.0.1:51820"); !ok || pk != (feature.Key{1}) {
		t.Fatalf("peerAt = %v, %v after learning", pk, ok)
	}
	var off staleWake // not initialised: wake off
	off.learn(v)
	if _, ok, _ := off.peerAt("198.18.0.1:51820"); ok {
		t.Fatal("a wake that is off learned endpoints")
	}
}
