package ipc_test

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wghooks/wghooks/internal/testkit"
	"github.com/wghooks/wghooks/ipc"
)

var gets = []byte(strings.Repeat("get=1\n\n", 1000))

// pipelineUntilStuck connects to path and sends get operations without
// reading a reply, until the server stops reading them (it is stuck
// writing replies no one reads).
// The connection is closed at cleanup.
func pipelineUntilStuck(t *testing.T, path string) (net.Conn, error) {
	c, err := net.Dial("unix", path)
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { c.Close() })
	for sent := 0; sent < 64<<20; sent += len(gets) {
		c.SetWriteDeadline(time.Now().Add(200 * time.Millisecond))
		if _, err := c.Write(gets); errors.Is(err, os.ErrDeadlineExceeded) {
			return c, nil
		} else if err != nil {
			return nil, fmt.Errorf("failed to pipeline gets: %w", err)
		}
	}
	return nil, errors.New("the server kept reading 64 MiB of gets whose replies no one read")
}

// TestStuckReaderIsCutOff: a client that pipelines gets and never reads
// is disconnected once a reply could not be written for WriteTimeout.
func TestStuckReaderIsCutOff(t *testing.T) {
	path, _ := serveLogged(t, func(s *ipc.Server) { s.WriteTimeout = 300 * time.Millisecond })
	c, err := pipelineUntilStuck(t, path)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		c.SetWriteDeadline(time.Now().Add(50 * time.Millisecond))
		_, err := c.Write(gets)
		if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
			return // broken pipe: the server closed the connection
		}
		if time.Now().After(deadline) {
			t.Fatal("the server still holds a client that has read nothing for 20 s")
		}
	}
}

// TestStuckClientsDoNotLockOutOthers: with MaxConns clients stuck (each
// pipelined gets and reads nothing), another client's get works once they
// have been stuck for a second, long before their write timeout, as
// `wg show` must.
func TestStuckClientsDoNotLockOutOthers(t *testing.T) {
	path, _ := serveLogged(t, func(s *ipc.Server) { s.WriteTimeout = time.Hour }) // the stuck stay stuck
	stuck := make(chan error, ipc.MaxConns)
	for i := 0; i < ipc.MaxConns; i++ {
		go func() {
			_, err := pipelineUntilStuck(t, path)
			stuck <- err
		}()
	}
	for i := 0; i < ipc.MaxConns; i++ {
		if err := <-stuck; err != nil {
			t.Fatal(err)
		}
	}
	// wg show connects once: once the stuck have been stuck a moment,
	// a single attempt must be served.
	testkit.Eventually(t, 15*time.Second, "a get beside the stuck clients", func() bool {
		c, err := ipc.Dial(filepath.Dir(path), "wglim0")
		if err != nil {
			return false
		}
		defer c.Close()
		_, err = c.Get()
		return err == nil
	})
}

// TestSlowSetStillAnswered: the write timeout starts with the reply, not
// with the operation: a set that takes longer than it to send is answered.
func TestSlowSetStillAnswered(t *testing.T) {
	path, _ := serveLogged(t, func(s *ipc.Server) { s.WriteTimeout = 100 * time.Millisecond })
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	c.Write([]byte("set=1\nlisten_port=51820\n"))
	time.Sleep(500 * time.Millisecond) // the slow client: the input itself takes this long
	c.Write([]byte("\n"))
	if reply, err := testkit.Reply(bufio.NewReader(c)); reply != "errno=0\n" {
		t.Fatalf("reply to a slow set = %q, %v; want errno=0", reply, err)
	}
}
