package uapi

import (
	"bufio"
	"errors"
	"strings"
	"testing"
)

const (
	keyA = "e84b5a6d2717c1003a13b431570353dbaca9146cf150c5f8575680feba52027a"
	keyB = "b85996fecc9c7f1fc6d2572a76eda11d59bcd20be8e543b15ce4bd85a8e75a33"
)

func TestParseSetValid(t *testing.T) {
	lines := []string{
		"private_key=" + keyA,
		"listen_port=51820",
		"replace_peers=true",
		"public_key=" + keyB,
		"endpoint=[fd00::1]:51820",
		"allowed_ip=198.18.0.0/15",
		"allowed_ip=-fd00::/8",
		"persistent_keepalive_interval=25",
		"wghooks_x=1",
		"public_key=" + keyA,
		"remove=true",
	}
	ext := &Extensions{Peer: map[string]func(string) error{"wghooks_x": nil}}
	s, err := ParseSet(lines, ext)
	if err != nil {
		t.Fatal(err)
	}
	if !s.ReplacePeers || len(s.Device) != 3 || len(s.Peers) != 2 {
		t.Fatalf("parsed %+v", s)
	}
	if len(s.Peers[0].Ext) != 1 || s.Peers[0].Ext[0].Key != "wghooks_x" {
		t.Fatalf("extension line not separated: %+v", s.Peers[0])
	}
	if !s.Peers[1].Remove {
		t.Fatal("remove=true not noticed")
	}
	std := s.Standard()
	if strings.Contains(std, "wghooks_x") {
		t.Fatalf("extension key leaked to upstream's text:\n%s", std)
	}
	if !strings.HasSuffix(std, "remove=true\n\n") || !strings.HasPrefix(std, "private_key=") {
		t.Fatalf("standard text out of order:\n%s", std)
	}
}

func TestParseSetErrors(t *testing.T) {
	cases := []struct {
		name  string
		lines []string
		errno int64
	}{
		{"no equals", []string{"listen_port"}, ErrnoProtocol},
		{"unknown device key", []string{"bogus=1"}, ErrnoInvalid},
		{"unknown peer key", []string{"public_key=" + keyB, "bogus=1"}, ErrnoInvalid},
		{"bad port", []string{"listen_port=65536"}, ErrnoInvalid},
		{"bad private key", []string{"private_key=zz"}, ErrnoInvalid},
		{"bad public key", []string{"public_key=" + keyB[:62]}, ErrnoInvalid},
		{"bad endpoint", []string{"public_key=" + keyB, "endpoint=host.example:51820"}, ErrnoInvalid},
		{"bad allowed ip", []string{"public_key=" + keyB, "allowed_ip=198.18.0.0/33"}, ErrnoInvalid},
		{"replace_peers false", []string{"replace_peers=false"}, ErrnoInvalid},
		{"protocol 2", []string{"public_key=" + keyB, "protocol_version=2"}, ErrnoInvalid},
		{"keepalive overflow", []string{"public_key=" + keyB, "persistent_keepalive_interval=70000"}, ErrnoInvalid},
		{"extension rejects", []string{"wghooks_x=no"}, ErrnoInvalid},
	}
	ext := &Extensions{Device: map[string]func(string) error{
		"wghooks_x": func(v string) error {
			if v != "yes" {
				return errors.New("want yes")
			}
			return nil
		},
	}}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParseSet(c.lines, ext)
			var coded Coded
			if !errors.As(err, &coded) {
				t.Fatalf("err = %v, want a coded error", err)
			}
			if coded.ErrorCode() != c.errno {
				t.Fatalf("errno = %d, want %d (%v)", coded.ErrorCode(), c.errno, err)
			}
		})
	}
}

func TestReadTransactionConsumesWholeTransaction(t *testing.T) {
	long := strings.Repeat("a", MaxLineLen+10)
	in := "listen_port=1\nallowed_ip=" + long + "\nfwmark=1\n\nget=1\n"
	r := bufio.NewReaderSize(strings.NewReader(in), 64)
	lines, ended, err := ReadTransaction(r)
	if err == nil || !ended {
		t.Fatalf("long line: lines=%q ended=%v err=%v", lines, ended, err)
	}
	rest, _ := r.ReadString('\n')
	if rest != "get=1\n" {
		t.Fatalf("next operation starts at %q, want get=1", rest)
	}
}

func TestReadTransactionEOF(t *testing.T) {
	r := bufio.NewReader(strings.NewReader("listen_port=1\nfwmark=2"))
	lines, ended, err := ReadTransaction(r)
	if err != nil || ended || len(lines) != 2 || lines[1] != "fwmark=2" {
		t.Fatalf("lines=%q ended=%v err=%v", lines, ended, err)
	}
}
