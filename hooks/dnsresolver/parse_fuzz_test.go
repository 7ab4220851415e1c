package dnsresolver

import (
	"net/netip"
	"testing"

	"golang.org/x/net/dns/dnsmessage"
)

// fuzzReply builds a reply to q (ID 0x4242) with the given answers.
func fuzzReply(tb testing.TB, q dnsmessage.Question, rcode dnsmessage.RCode, truncated bool, answers func(*dnsmessage.Builder) error) []byte {
	tb.Helper()
	b := dnsmessage.NewBuilder(nil, dnsmessage.Header{ID: 0x4242, Response: true, RCode: rcode, Truncated: truncated})
	b.EnableCompression()
	if err := b.StartQuestions(); err != nil {
		tb.Fatal(err)
	}
	if err := b.Question(q); err != nil {
		tb.Fatal(err)
	}
	if err := b.StartAnswers(); err != nil {
		tb.Fatal(err)
	}
	if answers != nil {
		if err := answers(&b); err != nil {
			tb.Fatal(err)
		}
	}
	msg, err := b.Finish()
	if err != nil {
		tb.Fatal(err)
	}
	return msg
}

// FuzzParseReply feeds a DNS server's reply (outside input: anyone on the
// path can forge one) to parseReply, for an A and an AAAA question. It
// must never panic, and what it returns is usable: addresses of the asked
// family with a positive TTL, or an error, or "truncated".
func FuzzParseReply(f *testing.F) {
	name := dnsmessage.MustNewName("vpn.example.com.")
	alias := dnsmessage.MustNewName("edge.example.net.")
	qa := dnsmessage.Question{Name: name, Type: dnsmessage.TypeA, Class: dnsmessage.ClassINET}
	qaaaa := dnsmessage.Question{Name: name, Type: dnsmessage.TypeAAAA, Class: dnsmessage.ClassINET}
	hdr := func(n dnsmessage.Name, ttl uint32) dnsmessage.ResourceHeader {
		return dnsmessage.ResourceHeader{Name: n, Class: dnsmessage.ClassINET, TTL: ttl}
	}
	f.Add(fuzzReply(f, qa, dnsmessage.RCodeSuccess, false, func(b *dnsmessage.Builder) error {
		if err := b.AResource(hdr(name, 60), dnsmessage.AResource{A: [4]byte{198, 18, 0, 1}}); err != nil {
			return err
		}
		return b.AResource(hdr(name, 0), dnsmessage.AResource{A: [4]byte{198, 18, 0, 2}})
	}), true)
	f.Add(fuzzReply(f, qaaaa, dnsmessage.RCodeSuccess, false, func(b *dnsmessage.Builder) error {
		if err := b.CNAMEResource(hdr(name, 300), dnsmessage.CNAMEResource{CNAME: alias}); err != nil {
			return err
		}
		return b.AAAAResource(hdr(alias, 30), dnsmessage.AAAAResource{AAAA: netip.MustParseAddr("fd00::1").As16()})
	}), false)
	f.Add(fuzzReply(f, qa, dnsmessage.RCodeNameError, false, nil), true)
	f.Add(fuzzReply(f, qa, dnsmessage.RCodeSuccess, true, nil), true)
	f.Add(fuzzReply(f, qa, dnsmessage.RCodeServerFailure, false, nil), true)
	f.Add([]byte{0x42, 0x42, 0x80, 0, 0, 1, 0, 0xff, 0, 0, 0, 0}, true)
	f.Fuzz(func(t *testing.T, reply []byte, askA bool) {
		q := qaaaa
		if askA {
			q = qa
		}
		res, truncated := parseReply(reply, 0x4242, q)
		if truncated {
			if res.err != nil || len(res.addrs) != 0 {
				t.Fatalf("truncated with a result: %+v", res)
			}
			return
		}
		if res.err != nil {
			if len(res.addrs) != 0 {
				t.Fatalf("error %v with addresses %v", res.err, res.addrs)
			}
			return
		}
		if len(res.addrs) > 0 && res.ttl <= 0 {
			t.Fatalf("addresses %v with TTL %v", res.addrs, res.ttl)
		}
		for _, a := range res.addrs {
			if !a.IsValid() || a.Zone() != "" {
				t.Fatalf("unusable address %v", a)
			}
			if askA && !a.Is4() {
				t.Fatalf("A question answered with %v", a)
			}
		}
	})
}
