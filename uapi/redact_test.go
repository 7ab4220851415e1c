package uapi

import (
	"errors"
	"strings"
	"testing"
)

// TestErrorsNeverQuoteValues: every refused line is named by its key; no
// error carries its value, which may be a secret.
func TestErrorsNeverQuoteValues(t *testing.T) {
	const v = "5ecret5ecret" // not valid for any key
	// Extension keys are left out: a feature's reason is its own text.
	var ext *Extensions
	peer := "public_key=" + strings.Repeat("ab", 32)
	for _, lines := range [][]string{
		{v},
		{v + v + v},
		{"unknown_key=" + v},
		{"private_key=" + v},
		{"listen_port=" + v},
		{"fwmark=" + v},
		{"replace_peers=" + v},
		{"public_key=" + v},
		{peer, "preshared_key=" + v},
		{peer, "endpoint=" + v},
		{peer, "persistent_keepalive_interval=" + v},
		{peer, "allowed_ip=" + v},
		{peer, "protocol_version=" + v},
		{peer, "remove=" + v},
		{peer, v},
	} {
		_, err := ParseSet(lines, ext)
		if err == nil {
			t.Fatalf("%q: accepted", lines)
		}
		if strings.Contains(err.Error(), v[:6]) {
			t.Errorf("%q: error quotes the value: %v", lines, err)
		}
	}
	if got := Redact("private_key=" + v); got != `"private_key=…"` {
		t.Errorf("Redact = %s", got)
	}
}

// TestExtensionValueQuotedShort: an extension key's refused value, never
// a secret, is quoted for the operator, but no more than 64 bytes of it.
func TestExtensionValueQuotedShort(t *testing.T) {
	ext := &Extensions{Device: map[string]func(string) error{"x_dev": func(string) error { return errors.New("want one of auto, off") }}}
	for _, c := range []struct{ value, want string }{
		{"maybe", `"maybe"`},
		{strings.Repeat("y", 4000), `"` + strings.Repeat("y", 64) + `…"`},
	} {
		_, err := ParseSet([]string{"x_dev=" + c.value}, ext)
		if err == nil || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), strings.Repeat("y", 65)) {
			t.Errorf("x_dev=%.10s…: %v, want %s quoted", c.value, err, c.want)
		}
	}
}
