package feature

import (
	"testing"
	"time"
)

func TestRTTFollowsRFC6298(t *testing.T) {
	var r RTT
	if r.RTO() != InitialRTO {
		t.Fatalf("RTO before any sample = %v, want %v", r.RTO(), InitialRTO)
	}
	r.Sample(200 * time.Millisecond)
	if s, v, _ := r.Get(); s != 200*time.Millisecond || v != 100*time.Millisecond {
		t.Fatalf("after the first sample: srtt %v rttvar %v, want 200ms 100ms", s, v)
	}
	if r.RTO() != 600*time.Millisecond {
		t.Fatalf("RTO = %v, want 600ms (SRTT + 4·RTTVAR)", r.RTO())
	}
	for i := 0; i < 100; i++ {
		r.Sample(time.Millisecond)
	}
	if s, _, _ := r.Get(); s > 2*time.Millisecond {
		t.Fatalf("srtt = %v after 100 samples of 1 ms", s)
	}
	if r.RTO() != MinRTO {
		t.Fatalf("RTO of a 1 ms path = %v, want the %v floor", r.RTO(), MinRTO)
	}
}

// ms is a mono reading n milliseconds into the test (never 0).
func ms(n int) int64 { return int64(n+10_000) * int64(time.Millisecond) }

func TestPathOneLostPacketIsNoDoubt(t *testing.T) {
	var p Path
	p.RTT.Sample(10 * time.Millisecond)
	// A send lost; nothing else sent for a long time: no doubt.
	p.Sent()
	p.Update(ms(1000))
	p.Update(ms(5000))
	if v := p.Check(ms(5000), 0, 0); v != Alive {
		t.Fatalf("one unanswered send = %v, want Alive", v)
	}
	// The next send is answered: the silence ends without a probe.
	p.Sent()
	p.Update(ms(5020))
	if v := p.Check(ms(5020), 0, 0); v != Alive {
		t.Fatalf("second send not yet due = %v, want Alive", v)
	}
	p.Heard()
	p.Update(ms(5040))
	if p.SilentFor(ms(9000)) != 0 || p.Check(ms(9000), 0, 0) != Alive {
		t.Fatal("an answer left the path in doubt")
	}
}

func TestPathDoubtThenProbeThenDead(t *testing.T) {
	var p Path
	p.RTT.Sample(10 * time.Millisecond) // RTO: the 100 ms floor
	p.Sent()
	p.Update(ms(0))
	p.Sent()
	p.Update(ms(20))
	if v := p.Check(ms(90), 0, 0); v != Alive {
		t.Fatalf("before an RTO: %v", v)
	}
	if v := p.Check(ms(100), 0, 0); v != Doubt {
		t.Fatalf("two sends unanswered for an RTO: %v, want Doubt", v)
	}
	p.Probed(ms(100))
	if v := p.Check(ms(299), 0, 0); v != Doubt {
		t.Fatalf("probe not yet 2·RTO old: %v, want Doubt", v)
	}
	if v := p.Check(ms(300), 0, 0); v != Dead {
		t.Fatalf("probe unanswered for 2·RTO: %v, want Dead", v)
	}
	p.Heard()
	p.Update(ms(310))
	if p.Probing() || p.Check(ms(310), 0, 0) != Alive {
		t.Fatal("hearing back left the path in doubt")
	}
}

func TestPathSamplesDataWithKarnsRule(t *testing.T) {
	var p Path
	p.Update(ms(0)) // asks for a sample
	p.Sent()
	time.Sleep(5 * time.Millisecond)
	p.Heard()
	s, _, ok := p.RTT.Get()
	if !ok || s < 5*time.Millisecond {
		t.Fatalf("data sample: srtt %v (ok %v), want at least 5ms", s, ok)
	}
	// A silence that sent a probe gives no sample: the answer may be
	// the probe's.
	p.Update(ms(100)) // asks again
	p.Sent()
	p.Probed(ms(100))
	time.Sleep(30 * time.Millisecond)
	p.Heard()
	if s2, _, _ := p.RTT.Get(); s2 != s {
		t.Fatalf("an ambiguous silence gave a sample: srtt %v -> %v", s, s2)
	}
	// A cap shortens the wait.
	p.Update(ms(200))
	p.Sent()
	p.Update(ms(220))
	p.Sent()
	p.Update(ms(240))
	if v := p.Check(ms(280), 40*time.Millisecond, 0); v != Doubt {
		t.Fatalf("capped at 40 ms: %v, want Doubt", v)
	}
}

// BenchmarkPathRoundTrip is what the packet paths pay per send and
// receipt (no clock read but the timed send's, one per 20 ms).
func BenchmarkPathRoundTrip(b *testing.B) {
	var p Path
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		p.Sent()
		p.Heard()
	}
}

func TestLossyLastsTwoMinutesAfterAFalseDoubt(t *testing.T) {
	var l Lossy
	t0 := time.Unix(1000, 0)
	if l.Is(t0) {
		t.Fatal("a path with no false doubt is lossy")
	}
	l.FalseDoubt(t0)
	if !l.Is(t0.Add(time.Minute)) {
		t.Fatal("not lossy a minute after a false doubt")
	}
	if l.Is(t0.Add(2 * time.Minute)) {
		t.Fatal("still lossy two minutes after a false doubt")
	}
}
