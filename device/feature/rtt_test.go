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
	p.Sent(ms(1000))
	if v := p.Check(ms(5000), 0, 0); v != Alive {
		t.Fatalf("one unanswered send = %v, want Alive", v)
	}
	// The next send is answered: the silence ends without a probe.
	p.Sent(ms(5000))
	if v := p.Check(ms(5005), 0, 0); v != Alive {
		t.Fatalf("second send not yet due = %v, want Alive", v)
	}
	p.Heard(ms(5010))
	if p.Outstanding() || p.Check(ms(9000), 0, 0) != Alive {
		t.Fatal("an answer left the path in doubt")
	}
}

func TestPathDoubtThenProbeThenDead(t *testing.T) {
	var p Path
	p.RTT.Sample(10 * time.Millisecond) // RTO: the 100 ms floor
	p.Sent(ms(0))
	p.Sent(ms(20))
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
	// The answer (to the probe or the data) clears it, and gives no
	// sample: it may be the probe's (Karn).
	before, _, _ := p.RTT.Get()
	p.Heard(ms(310))
	if after, _, _ := p.RTT.Get(); after != before {
		t.Fatalf("an ambiguous silence gave a sample: srtt %v -> %v", before, after)
	}
	if p.Outstanding() || p.Check(ms(310), 0, 0) != Alive {
		t.Fatal("hearing back left the path in doubt")
	}
}

func TestPathSamplesDataAndCaps(t *testing.T) {
	var p Path
	p.Sent(ms(0))
	p.Heard(ms(50))
	if s, _, ok := p.RTT.Get(); !ok || s != 50*time.Millisecond {
		t.Fatalf("data sample: srtt %v (ok %v), want 50ms", s, ok)
	}
	// A burst counts as one send.
	p.Sent(ms(1000))
	p.Sent(ms(1001))
	if v := p.Check(ms(5000), 0, 0); v != Alive {
		t.Fatalf("one burst unanswered = %v, want Alive", v)
	}
	// A cap shortens the wait.
	p.Sent(ms(1200))
	if v := p.Check(ms(1250), 40*time.Millisecond, 0); v != Doubt {
		t.Fatalf("capped at 40 ms: %v, want Doubt", v)
	}
}
