package ipc_test

import (
	"bufio"
	"net"
	"strings"
	"testing"
	"time"
)

// TestLogsNeverQuoteValues: lines in the operation position are named by
// their key, never by their value.
func TestLogsNeverQuoteValues(t *testing.T) {
	const secret = "e84b5a6d2717c1003a13b431570353dbaca9146cf150c5f8575680feba52027a"
	path, logs := serveLogged(t, nil)
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := bufio.NewReader(c)
	for _, op := range []string{"private_key=" + secret[:16], secret[:20], "k=" + secret[:12]} {
		c.SetDeadline(time.Now().Add(20 * time.Second))
		if _, err := c.Write([]byte(op + "\n\n")); err != nil {
			t.Fatal(err)
		}
		var reply strings.Builder
		for !strings.HasSuffix(reply.String(), "\n\n") {
			line, err := r.ReadString('\n')
			if err != nil {
				t.Fatalf("reply to %.12q: %q, %v", op, reply.String(), err)
			}
			reply.WriteString(line)
		}
		if !strings.HasPrefix(reply.String(), "errno=-") {
			t.Fatalf("reply to %.12q = %q, want an errno", op, reply.String())
		}
	}
	l := logs.String()
	for _, part := range []string{secret[:8], secret[8:16]} {
		if strings.Contains(l, part) {
			t.Fatalf("log quotes a value:\n%s", l)
		}
	}
	if !strings.Contains(l, "private_key") {
		t.Fatalf("log does not name the key:\n%s", l)
	}
}
