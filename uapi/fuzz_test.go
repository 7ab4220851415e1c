package uapi

import (
	"bufio"
	"strings"
	"testing"
)

// FuzzParseSet checks that no input panics the parser and that what it
// accepts renders to standard text that parses back to the same thing.
func FuzzParseSet(f *testing.F) {
	seeds := []string{
		"private_key=" + keyA + "\nlisten_port=51820\n",
		"replace_peers=true\npublic_key=" + keyB + "\nendpoint=[fd00::1]:1\nallowed_ip=-198.18.0.0/15\n",
		"public_key=" + keyB + "\nremove=true\nwghooks_x=1\n",
		"listen_port\n",
		"=\n",
		"public_key=\n",
		"fwmark=4294967296\n",
	}
	for _, s := range seeds {
		f.Add(s)
	}
	ext := &Extensions{Peer: map[string]func(string) error{"wghooks_x": nil}}
	f.Fuzz(func(t *testing.T, in string) {
		lines := strings.Split(strings.TrimSuffix(in, "\n"), "\n")
		s, err := ParseSet(lines, ext)
		if err != nil {
			if _, ok := err.(Coded); !ok {
				t.Fatalf("error without errno: %v", err)
			}
			return
		}
		std := strings.TrimSuffix(s.Standard(), "\n\n")
		if std == "" {
			return
		}
		again, err := ParseSet(strings.Split(std, "\n"), nil)
		if err != nil {
			t.Fatalf("standard text %q does not parse back: %v", std, err)
		}
		if again.Standard() != s.Standard() {
			t.Fatalf("round trip changed:\n%q\n%q", s.Standard(), again.Standard())
		}
	})
}

// FuzzReadTransaction checks that reading never panics, never returns a
// line longer than the limit, and always stops at the first blank line.
func FuzzReadTransaction(f *testing.F) {
	f.Add("a=1\nb=2\n\nget=1\n")
	f.Add("x")
	f.Add(strings.Repeat("y", MaxLineLen+5) + "\n\n")
	f.Fuzz(func(t *testing.T, in string) {
		r := bufio.NewReaderSize(strings.NewReader(in), 16)
		lines, ended, _ := ReadTransaction(r)
		for _, l := range lines {
			if len(l) > MaxLineLen || strings.Contains(l, "\n") {
				t.Fatalf("bad line %q", l)
			}
		}
		if ended {
			if i := strings.Index(in, "\n\n"); i < 0 && !strings.HasPrefix(in, "\n") {
				t.Fatalf("ended without a blank line in %q", in)
			}
		}
	})
}
