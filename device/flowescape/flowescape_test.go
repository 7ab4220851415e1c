package flowescape

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	wgconn "golang.zx2c4.com/wireguard/conn"

	"github.com/wghooks/wghooks/device/feature"
	"github.com/wghooks/wghooks/device/feature/featuretest"
	"github.com/wghooks/wghooks/uapi"
)

// flowSim drives a flowWatch with a 250 ms sampling tick. The path's
// verdict is modelled as feature.Path gives it on a path whose RTO is
// simRTO: doubt once the first unanswered send is that old.
type flowSim struct {
	t      *testing.T
	w      flowWatch
	c      flowCounts
	seq    uint64
	now    time.Time
	tm     flowTimes
	sentAt time.Time // the first send after the last receipt
}

// send, initiate and hear stamp events in the order they are called, as
// flowState.stamp does; answer is a handshake response heard.
func (s *flowSim) send() {
	if s.c.data <= s.c.recv {
		s.sentAt = s.now
	}
	s.seq++
	s.c.data = s.seq
	s.c.sent = true
}
func (s *flowSim) initiate()  { s.seq++; s.c.init = s.seq; s.c.sent = true }
func (s *flowSim) hear()      { s.seq++; s.c.recv = s.seq; s.c.heard = true }
func (s *flowSim) answer()    { s.seq++; s.c.resp = s.seq; s.c.recv = s.seq; s.c.heard = true }
func (s *flowSim) keepalive() { s.c.sent = true }

// step is one sample: the path's verdict, then the watcher's flags cleared
// as the watcher's swaps do.
func (s *flowSim) step() flowAction {
	s.c.doubt = s.c.data > s.c.recv && s.now.Sub(s.sentAt) >= simRTO
	a := s.w.step(s.now, s.c, s.tm)
	s.c.heard, s.c.heardData, s.c.sent = false, false, false
	if a == flowEscapeNow {
		s.sentAt = s.now // the shell resets the path: a new flow
	}
	return a
}

const (
	simTick = 250 * time.Millisecond
	simRTO  = time.Second
)

func newFlowSim(t *testing.T) *flowSim {
	return &flowSim{t: t, now: time.Unix(1000, 0), tm: flowTimes{handshake: time.Second, maxBackoff: time.Minute, probeEvery: 15 * time.Second}}
}

// run advances n ticks; before each, ev may bump counters (tick index
// given). It returns the actions taken, with the tick they happened on.
func (s *flowSim) run(n int, ev func(i int)) map[int]flowAction {
	out := map[int]flowAction{}
	for i := 0; i < n; i++ {
		s.now = s.now.Add(simTick)
		if ev != nil {
			ev(i)
		}
		if a := s.step(); a != flowNone {
			out[i] = a
		}
	}
	return out
}

func only(t *testing.T, got map[int]flowAction, want map[int]flowAction) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("actions = %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Fatalf("actions = %v, want %v", got, want)
		}
	}
}

func TestFlowWatchTwoWayTrafficNeverActs(t *testing.T) {
	s := newFlowSim(t)
	got := s.run(400, func(i int) {
		s.send()
		if i%2 == 0 { // replies every other tick: never silent for a second
			s.hear()
		}
		if i%100 == 50 { // a rekey, answered
			s.initiate()
		}
	})
	only(t, got, nil)
}

func TestFlowWatchKeepalivesOnlyNeverAct(t *testing.T) {
	// Keepalives are not counted as data; nothing comes back.
	s := newFlowSim(t)
	only(t, s.run(400, nil), nil)
	if s.w.busy(s.now, s.tm) {
		t.Fatal("an endpoint with no traffic stays busy")
	}
}

func TestFlowWatchDeadBackendWithTrafficEscapesAfterProbe(t *testing.T) {
	s := newFlowSim(t)
	var actions []int
	for i := 0; i < 40; i++ {
		s.now = s.now.Add(simTick)
		if s.w.escapes == 0 {
			s.send() // after an escape data waits for the handshake
		}
		a := s.step()
		if a == flowProbe {
			s.initiate() // upstream sends the initiation
		}
		if a != flowNone {
			actions = append(actions, int(a)*100+i)
		}
	}
	// probe at tick 4, initiation seen at tick 5, unanswered 1 s later
	// (tick 9): escape. Then each lost initiation escapes again after the
	// backoff (1 s, 2 s, 4 s...), and no initiation follows here, so once.
	want := []int{int(flowProbe)*100 + 4, int(flowEscapeNow)*100 + 9}
	if len(actions) != len(want) || actions[0] != want[0] || actions[1] != want[1] {
		t.Fatalf("actions (action*100+tick) = %v, want %v", actions, want)
	}
	if s.w.escapes != 1 || s.w.reason == "" {
		t.Fatalf("escapes = %d, reason %q", s.w.escapes, s.w.reason)
	}
}

func TestFlowWatchOneWayFlowBacksOff(t *testing.T) {
	// Data goes out; the far end only sends its passive keepalive, 10 s
	// after the data began, and answers every handshake.
	s := newFlowSim(t)
	probes := 0
	for i := 0; i < 4*60; i++ {
		s.now = s.now.Add(simTick)
		s.send()
		if i%40 == 39 {
			s.hear() // passive keepalive every 10 s
		}
		a := s.step()
		switch a {
		case flowProbe:
			probes++
			s.initiate()
		case flowEscapeNow:
			t.Fatalf("escaped from a live one-way flow at tick %d", i)
		}
		// The probe is answered on the tick after the initiation.
		if s.w.initAt.Equal(s.now) {
			s.now = s.now.Add(simTick)
			s.answer()
			s.step()
		}
	}
	if w := s.w.oneWay.Wait(s.now); w != 16*time.Second {
		t.Fatalf("one-way silence = %v after a minute of one-way traffic, want 16s", w)
	}
	if probes > 6 {
		t.Fatalf("%d probes in a minute of one-way traffic, want the threshold to grow past the far end's keepalive", probes)
	}
	// It decays back once nothing is unusual for a while.
	s.hear()
	for i := 0; i < 4*60*10; i++ {
		s.now = s.now.Add(simTick)
		s.step()
	}
	if w := s.w.oneWay.Wait(s.now); w != 0 {
		t.Fatalf("one-way silence = %v after 10 quiet minutes, want none", w)
	}
}

func TestFlowWatchIdleNeedsFirstRetry(t *testing.T) {
	s := newFlowSim(t)
	// One initiation unanswered, no data: not enough.
	got := s.run(19, func(i int) {
		if i == 0 {
			s.initiate()
		}
	})
	only(t, got, nil)
	// Upstream's retry 5 s later, also unanswered: escape once it is lost.
	got = s.run(8, func(i int) {
		if i == 0 {
			s.initiate()
		}
	})
	only(t, got, map[int]flowAction{4: flowEscapeNow})
}

// TestFlowWatchSilentSpellSchedule: an endpoint that never answers again
// (a server down, or a balancer that keeps hashing to a dead backend) is
// escaped from quickly at first, then at upstream's retry pace, then once
// per MaxBackoff; hearing from it ends the spell.
func TestFlowWatchSilentSpellSchedule(t *testing.T) {
	s := newFlowSim(t)
	s.w.escapes, s.w.escapedAt, s.w.firstEscape = 1, s.now, s.now
	start := s.now
	escapesAt := []time.Duration{0}
	for i := 0; i < 4*300; i++ { // five minutes
		s.now = s.now.Add(simTick)
		if s.w.initAt.IsZero() {
			s.initiate() // each escape (and upstream's retries) sends one
		}
		if s.step() == flowEscapeNow {
			escapesAt = append(escapesAt, s.now.Sub(start))
		}
	}
	count := func(before time.Duration) int {
		n := 0
		for _, at := range escapesAt {
			if at < before {
				n++
			}
		}
		return n
	}
	// Behind a balancer with one dead backend of two, each escape is a
	// coin toss: at least 10 within 30 s leave at most 1 in 1024 stuck.
	if n := count(28 * time.Second); n < 10 {
		t.Errorf("%d escapes in the first 28 s of a silent spell, want at least 10: %v", n, escapesAt)
	}
	if n := count(7 * time.Second); n != 1+quickEscapes {
		t.Errorf("%d escapes in the first 7 s, want %d quick ones: %v", n, 1+quickEscapes, escapesAt)
	}
	// While upstream retries (90 s), escapes are never further apart than
	// its retry pace nor closer than the handshake wait, and never more
	// frequent than that pace once the quick ones are done.
	for i := 1; i < len(escapesAt); i++ {
		gap, at := escapesAt[i]-escapesAt[i-1], escapesAt[i-1]
		switch {
		case gap < s.tm.handshake:
			t.Errorf("escape at %v only %v after the last one", escapesAt[i], gap)
		case at+steadyBackoff < steadyFor && gap > steadyBackoff+simTick:
			t.Errorf("escape at %v came %v after the last one, want at most %v while the spell is young", escapesAt[i], gap, steadyBackoff)
		case i > 1+quickEscapes && gap < steadyBackoff:
			t.Errorf("escape at %v came %v after the last one, want at least %v after the quick ones", escapesAt[i], gap, steadyBackoff)
		case at+steadyBackoff >= steadyFor && (gap < s.tm.maxBackoff || gap > s.tm.maxBackoff+simTick):
			t.Errorf("escape at %v came %v after the last one, want MaxBackoff (%v) once the spell is 90 s old", escapesAt[i], gap, s.tm.maxBackoff)
		}
	}
	// A server simply down: the cost is bounded, one per minute at length.
	if n := count(5 * time.Minute); n > 1+quickEscapes+int(steadyFor/steadyBackoff)+4 {
		t.Errorf("%d escapes in 5 minutes of silence: %v", n, escapesAt)
	}

	s.now = s.now.Add(simTick)
	s.hear()
	if a := s.step(); a != flowRecovered {
		t.Fatalf("hearing back after escapes = %v, want flowRecovered", a)
	}
	if s.w.escapes != 0 || s.w.busy(s.now.Add(2*time.Second), s.tm) {
		t.Fatalf("state not reset after recovery: %+v", s.w)
	}
}

func TestFlowWatchBackoffCapped(t *testing.T) {
	now := time.Unix(1000, 0)
	for _, tc := range []struct {
		escapes int
		age     time.Duration
		max     time.Duration
		want    time.Duration
	}{
		{1, time.Second, time.Minute, time.Second},
		{quickEscapes + 1, 10 * time.Second, time.Minute, steadyBackoff},
		{30, 2 * time.Minute, time.Minute, time.Minute},
		{30, 2 * time.Minute, 2 * time.Second, 2 * time.Second}, // MaxBackoff caps every phase
		{quickEscapes + 1, 10 * time.Second, 2 * time.Second, 2 * time.Second},
	} {
		w := flowWatch{escapes: tc.escapes, firstEscape: now.Add(-tc.age)}
		if b := w.backoff(now, flowTimes{handshake: time.Second, maxBackoff: tc.max}); b != tc.want {
			t.Errorf("backoff after %d escapes in %v (MaxBackoff %v) = %v, want %v", tc.escapes, tc.age, tc.max, b, tc.want)
		}
	}
}

// TestFlowEscapeNudgesOtherPeersBounded: while one endpoint stays silent
// and escapes again and again, another peer in use gets a keepalive on
// every escape (its flow moved each time) but at most one initiation per
// 5 s; a peer idle for longer than othersInUse gets nothing.
func TestFlowEscapeNudgesOtherPeersBounded(t *testing.T) {
	f := &FlowEscape{cfg: Config{}.withDefaults()}
	f.flows.m = map[netip.AddrPort]*flowState{}
	dead := netip.MustParseAddrPort("198.18.0.1:51820")
	live := netip.MustParseAddrPort("198.18.0.2:51820")
	idle := netip.MustParseAddrPort("198.18.0.3:51820")
	for _, a := range []netip.AddrPort{dead, live, idle} {
		f.flows.m[a] = &flowState{addr: a}
	}
	s := newFlowSim(t)
	f.flows.m[idle].w.lastActive = s.now.Add(-othersInUse - time.Second)
	s.w.escapes, s.w.escapedAt, s.w.firstEscape = 1, s.now, s.now
	f.flows.m[live].w.lastActive = s.now

	var keepalives, initiations []time.Time
	var burst int // initiations during the quick escapes
	nudge := func() {
		others, initiate := f.nudges(f.flows.m[dead], s.now)
		for _, a := range others {
			switch a {
			case live:
				keepalives = append(keepalives, s.now)
				if initiate {
					initiations = append(initiations, s.now)
					if len(keepalives) <= 1+quickEscapes {
						burst++
					}
				}
			default:
				t.Fatalf("escape nudged %v, want only the peer in use", a)
			}
		}
	}
	nudge() // the first escape
	escapes := 1
	for i := 0; i < 4*180; i++ { // three minutes
		s.now = s.now.Add(simTick)
		f.flows.m[live].w.lastActive = s.now // two-way traffic
		if s.w.initAt.IsZero() {
			s.initiate()
		}
		if s.step() == flowEscapeNow {
			escapes++
			nudge()
		}
	}
	if len(keepalives) != escapes {
		t.Errorf("the peer in use got %d keepalives for %d escapes, want one each", len(keepalives), escapes)
	}
	if len(initiations) == 0 || !initiations[0].Equal(keepalives[0]) {
		t.Fatalf("the first escape sent the peer in use no initiation (%v)", initiations)
	}
	for i := 1; i < len(initiations); i++ {
		if gap := initiations[i].Sub(initiations[i-1]); gap < nudgeEvery {
			t.Errorf("initiations to the peer in use %v apart, want at most one per %v", gap, nudgeEvery)
		}
	}
	// The quick escapes, about a second apart, cost it one or two
	// handshakes, not one each.
	if burst > 2 {
		t.Errorf("%d initiations during the first %d escapes, want at most 2", burst, 1+quickEscapes)
	}
}

func TestFlowWatchForcesASwallowedProbe(t *testing.T) {
	// A handshake just happened, so upstream swallows the first probe:
	// the next sample asks for a forced one instead of waiting 5 s.
	s := newFlowSim(t)
	var got []flowAction
	for i := 0; i < 12; i++ {
		s.now = s.now.Add(simTick)
		s.send()
		a := s.step()
		if a == flowForceProbe {
			s.initiate() // forced: it goes out
		}
		if a != flowNone {
			got = append(got, a)
		}
	}
	// probe (swallowed), forced probe, then escape 1 s after it went out.
	want := []flowAction{flowProbe, flowForceProbe, flowEscapeNow}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] || got[2] != want[2] {
		t.Fatalf("actions = %v, want %v", got, want)
	}
}

func TestFlowWatchOrderWithinASample(t *testing.T) {
	// A request answered between two samples, then idleness: nothing is
	// waiting, so nothing is probed (a DNS query, a single ping).
	s := newFlowSim(t)
	only(t, s.run(40, func(i int) {
		if i == 0 {
			s.send()
			s.hear()
		}
	}), nil)
	// The answer, then one more send that is never answered, in the same
	// sample: that send is waiting, and silence is noticed on time.
	s = newFlowSim(t)
	got := s.run(8, func(i int) {
		if i == 0 {
			s.hear()
			s.send()
		}
	})
	only(t, got, map[int]flowAction{4: flowProbe, 5: flowForceProbe, 6: flowForceProbe, 7: flowForceProbe})
}

// TestFlowEscapeOffForFixedListenPort: a fixed listen port (a server)
// turns watching off, a random one back on, the UAPI key off and auto;
// FlowEscapeOff and a gateway never watch.
func TestFlowEscapeOffForFixedListenPort(t *testing.T) {
	h, _ := featuretest.New(t)
	f := New(h, Config{}, false)
	if !f.Watching() {
		t.Fatal("flow escape off on a fresh device (random port)")
	}
	keys := f.Keys()
	steps := []struct {
		set    string
		active bool
		get    string
	}{
		{"listen_port=51999", false, "wghooks_flow_escape=auto"}, // a server
		{"listen_port=0", true, "wghooks_flow_escape=auto"},
		{"wghooks_flow_escape=off", false, "wghooks_flow_escape=off"},
		{"wghooks_flow_escape=auto", true, "wghooks_flow_escape=auto"},
	}
	ext := &uapi.Extensions{Device: map[string]func(string) error{keys[0].Name: keys[0].Validate}}
	for _, s := range steps {
		set, err := uapi.ParseSet([]string{s.set}, ext)
		if err != nil {
			t.Fatalf("%q: %v", s.set, err)
		}
		for _, l := range set.DeviceExt {
			if err := keys[0].ApplyDevice(l.Value); err != nil {
				t.Fatalf("%q: %v", s.set, err)
			}
		}
		f.Configured(feature.Change{Set: set})
		if f.Watching() != s.active {
			t.Fatalf("after %q: watching = %v, want %v", s.set, !s.active, s.active)
		}
		if g := f.GetLines(); len(g) != 1 || g[0].String() != s.get {
			t.Fatalf("after %q: get lines %v, want %q", s.set, g, s.get)
		}
	}
	if _, err := uapi.ParseSet([]string{"wghooks_flow_escape=maybe"}, ext); err == nil || !strings.Contains(err.Error(), `"maybe"`) {
		t.Fatalf("bad value: error %v, want one quoting it", err)
	}
	for _, f := range []*FlowEscape{New(h, Config{FlowEscapeOff: true}, false), New(h, Config{}, true)} {
		if f.Watching() || f.ReceiveTypes() != 0 {
			t.Fatal("FlowEscapeOff or a gateway left flow escape watching")
		}
	}
}

// BenchmarkFlowEscapeHooks measures what flow escape adds per packet: on
// a client (watching) for a data packet received during a download, and
// for a request batch sent plus its answer; on a server (fixed port: off).
func BenchmarkFlowEscapeHooks(b *testing.B) {
	ep := &wgconn.StdNetEndpoint{AddrPort: netip.MustParseAddrPort("127.0.0.1:51820")}
	pkt := make([]byte, 1400)
	pkt[0] = 4
	batch := [][]byte{pkt}
	newFE := func(watching bool) *FlowEscape {
		f := &FlowEscape{cfg: Config{}.withDefaults(), wake: make(chan struct{}, 1)}
		f.flows.m = make(map[netip.AddrPort]*flowState)
		f.fixedPort.Store(!watching)
		f.updateActive()
		f.OnSend(batch, ep)
		return f
	}
	b.Run("client-receive", func(b *testing.B) {
		f := newFE(true)
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			f.OnReceive(pkt, ep)
		}
	})
	b.Run("client-send-and-answer", func(b *testing.B) {
		f := newFE(true)
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			f.OnSend(batch, ep)
			f.OnReceive(pkt, ep)
		}
	})
	b.Run("server-receive", func(b *testing.B) {
		f := newFE(false)
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			f.OnReceive(pkt, ep)
		}
	})
}

// A client that only sends keepalives hears nothing back from a live
// server, so silence alone proves nothing: it is probed once per
// ProbeInterval, and escapes only when the probe is lost.
func TestFlowWatchKeepaliveOnlyProbesOncePerInterval(t *testing.T) {
	s := newFlowSim(t)
	probes := 0
	for i := 0; i < 4*120; i++ { // two minutes, keepalive every second
		s.now = s.now.Add(simTick)
		if i%4 == 0 {
			s.keepalive()
		}
		switch s.step() {
		case flowProbe:
			probes++
			s.initiate()
			s.now = s.now.Add(simTick)
			s.answer()
			if a := s.step(); a != flowNone {
				t.Fatalf("answered probe: %v", a)
			}
		case flowNone:
		default:
			t.Fatalf("tick %d: acted on a live keepalive-only flow", i)
		}
	}
	if probes < 7 || probes > 8 {
		t.Fatalf("%d probes in two minutes, want one per 15 s", probes)
	}
}

func TestFlowWatchKeepaliveOnlyDeadBackendEscapes(t *testing.T) {
	s := newFlowSim(t)
	var got []int
	for i := 0; i < 4*20; i++ {
		s.now = s.now.Add(simTick)
		if i%4 == 0 {
			s.keepalive()
		}
		a := s.step()
		if a == flowProbe {
			s.initiate() // upstream sends it; nothing answers
		}
		if a != flowNone {
			got = append(got, int(a)*100+i)
		}
	}
	// A probe after 15 s of silence, lost 1 s later: escape.
	if len(got) < 2 || got[0] < 100+59 || got[0] > 100+61 || got[1] != got[0]-100+int(flowEscapeNow)*100+5 {
		t.Fatalf("actions (action*100+tick) = %v, want a probe at about tick 60 and an escape 5 ticks later (seen, then 1 s)", got)
	}
}

// A client that only receives (a download over UDP): when the data stops,
// it is probed after ProbeInterval, and escapes when the probe is lost.
func TestFlowWatchReceiveOnlyNoticesDeadBackend(t *testing.T) {
	s := newFlowSim(t)
	s.run(40, func(int) { s.c.heard, s.c.heardData = true, true })
	var got []int
	for i := 0; i < 4*20; i++ {
		s.now = s.now.Add(simTick)
		a := s.step()
		if a == flowProbe {
			s.initiate()
		}
		if a != flowNone {
			got = append(got, int(a)*100+i)
		}
	}
	if len(got) < 2 || got[0] != 100+59 || got[1] != int(flowEscapeNow)*100+64 {
		t.Fatalf("actions (action*100+tick) = %v, want a probe 15 s after the stream stopped and an escape 1 s later", got)
	}
}
