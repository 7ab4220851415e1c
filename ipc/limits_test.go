package ipc_test

import (
	"bufio"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/wghooks/wghooks/internal/testkit"
	"github.com/wghooks/wghooks/ipc"
)

// stubHandler answers a get with a fixed reply and accepts every set.
type stubHandler struct{}

func (stubHandler) IpcSetOperation(r io.Reader) error { return nil }
func (stubHandler) IpcGetOperation(w io.Writer) error {
	_, err := io.WriteString(w, "listen_port=51820\n")
	return err
}

// serveLogged serves a stubHandler on a socket in a temp dir and returns
// its path and its log.
func serveLogged(t *testing.T, configure func(*ipc.Server)) (string, *testkit.Log) {
	t.Helper()
	logs := testkit.NewLog(t, "server")
	dir := testkit.ServeUAPILog(t, stubHandler{}, "wglim0", configure, logs.Logf)
	return ipc.SocketPath(dir, "wglim0"), logs
}

// TestLongOperationLineRefused: an operation line without end is refused
// with -EPROTO after a few bytes and the connection closed; the server
// neither waits for its newline nor logs it whole.
func TestLongOperationLineRefused(t *testing.T) {
	path, logs := serveLogged(t, nil)
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	go c.Write([]byte(strings.Repeat("A", 1<<20))) // 1 MiB, no newline, ever

	r := bufio.NewReader(c)
	reply, err := r.ReadString('\n')
	if reply != "errno=-71\n" {
		t.Fatalf("reply = %q (%v), want errno=-71", reply, err)
	}
	// Then the server closes: the client reads the blank line and the end.
	// (Closing with unread input may reset the connection instead.)
	if rest, err := io.ReadAll(r); err == nil && string(rest) != "\n" {
		t.Fatalf("after the reply: %q, %v; want the blank line and the end", rest, err)
	}
	if l := logs.String(); strings.Contains(l, strings.Repeat("A", 64)) || len(l) > 1024 {
		t.Fatalf("log quotes the line (%d bytes): %.200q", len(l), l)
	}
}
