package ipc_test

import (
	"bufio"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/wghooks/wghooks/device"
	"github.com/wghooks/wghooks/internal/testkit"
	"github.com/wghooks/wghooks/ipc"
)

// TestStalledClientDoesNotBlockOthers: a client that starts a transaction
// and never finishes holds no lock; many concurrent clients keep working,
// and the stalled one is cut off after the idle timeout.
func TestStalledClientDoesNotBlockOthers(t *testing.T) {
	d := testkit.Device(t, "198.18.9.9", device.Config{})
	dir := testkit.ServeUAPI(t, d, "wgload0", func(srv *ipc.Server) { srv.IdleTimeout = 500 * time.Millisecond })

	stalled, err := net.Dial("unix", ipc.SocketPath(dir, "wgload0"))
	if err != nil {
		t.Fatal(err)
	}
	defer stalled.Close()
	stalled.Write([]byte("set=1\npublic_key=" + pubB + "\nallowed_ip=198.18.9.10/32\n")) // no blank line, ever

	const clients = 16
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for i := 0; i < clients; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			c, err := ipc.Dial(dir, "wgload0")
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			for j := 0; j < 5; j++ {
				if err := c.Set(fmt.Sprintf("fwmark=%d", i*10+j)); err != nil {
					errs <- fmt.Errorf("client %d set: %w", i, err)
					return
				}
				if _, err := c.Get(); err != nil {
					errs <- fmt.Errorf("client %d get: %w", i, err)
					return
				}
			}
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}

	// The stalled client's half transaction was never applied, and the
	// server hangs up on it after the idle timeout.
	if len(d.Peers()) != 0 {
		t.Fatalf("half a transaction was applied: peers %v", d.Peers())
	}
	stalled.SetReadDeadline(time.Now().Add(10 * time.Second))
	reply, err := bufio.NewReader(stalled).ReadString('\n')
	if err == nil && reply != "errno=-5\n" {
		t.Fatalf("stalled client got %q, want an I/O errno or a hang-up", reply)
	}
	if len(d.Peers()) != 0 {
		t.Fatalf("timed-out transaction was applied: peers %v", d.Peers())
	}
}
