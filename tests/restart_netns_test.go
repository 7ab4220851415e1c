//go:build linux

package tests

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wghooks/wghooks/internal/testkit"
)

// The operator's flow, for real: our daemon serves a roaming client that
// runs Debian's unmodified wireguard-go and keeps sending. The daemon is
// stopped with SIGTERM, started again, configured with `wg setconf`
// (no endpoint for the client: it was only ever learned) and its link brought
// up. The state file the old process saved carries the client's address
// to the new one, which reaches the client first; the client recovers
// with no change on its side, long before its own 15 s timer would fire.
func TestNetnsRestartDebianClient(t *testing.T) {
	pair := newNetnsPair(t)
	netnsRequireTool(t, "wg")
	netnsRequireTool(t, debianWireguardGo)
	ours := wghooksBinary(t)
	statePath := filepath.Join(t.TempDir(), "wghooks", "wg.json")
	keyS, keyC := newNetnsKey(t), newNetnsKey(t)
	ifS, ifC := netnsName("wgr"), netnsName("wgr")
	tunS, tunC := netip.MustParseAddr("198.19.0.1"), netip.MustParseAddr("198.19.0.2")

	// The operator's configuration: no endpoint for the roaming client.
	conf := filepath.Join(t.TempDir(), "wg.conf")
	if err := os.WriteFile(conf, []byte("[Interface]\nPrivateKey = "+keyS.priv+"\nListenPort = 51820\n\n[Peer]\nPublicKey = "+keyC.pub+"\nAllowedIPs = "+tunC.String()+"/32\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	startServer := func() (*netnsDaemon, time.Time) {
		d := pair.a.startDaemon(t, ours, ifS, "WGHOOKS_STATE_FILE="+statePath)
		d.wg(t, "setconf", ifS, conf)
		pair.a.run(t, "ip", "addr", "add", tunS.String()+"/24", "dev", ifS)
		pair.a.run(t, "ip", "link", "set", ifS, "up")
		return d, time.Now()
	}
	s1, _ := startServer()
	client := pair.b.startDaemon(t, debianWireguardGo, ifC)
	client.configure(t, keyC, 51821, keyS, netip.AddrPortFrom(pair.addrA, 51820), []netip.Addr{tunC}, []netip.Addr{tunS})
	ping := func() bool {
		_, err := pair.b.exec("ping", "-n", "-c", "1", "-W", "0.3", tunS.String())
		return err == nil
	}
	testkit.Eventually(t, 15*time.Second, "a ping from the client through the first server", ping)

	// The client keeps sending, as a user's applications would.
	var mu sync.Mutex
	var oks []time.Time
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < 1000; i++ {
			if ping() {
				mu.Lock()
				oks = append(oks, time.Now())
				mu.Unlock()
			}
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
		}
	}()
	defer func() {
		close(stop)
		<-done
	}()

	s1.stop()
	data, err := os.ReadFile(statePath)
	if err != nil || !strings.Contains(string(data), keyC.pub) {
		t.Fatalf("the stopped daemon left no state file with the client: %q, %v\n%s", data, err, s1.out.String())
	}
	s2, upAt := startServer()
	var back time.Time
	recovered := testkit.Poll(10*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		for _, ok := range oks {
			if ok.After(upAt) {
				back = ok
				return true
			}
		}
		return false
	})
	log := s2.out.String()
	if !recovered {
		t.Fatalf("the Debian client did not get through within 10s of the restarted daemon's link coming up\n%s", log)
	}
	// The kernel may report the fresh TUN up before `wg set`: the
	// broadcast then follows the configuration instead of the link.
	for _, want := range []string{"restored 1 learned endpoints", "): initiation to 1 peers"} {
		if !strings.Contains(log, want) {
			t.Errorf("restarted daemon's log lacks %q:\n%s", want, log)
		}
	}
	t.Logf("Debian client's pings through again %v after `ip link set up` (its own timer: 15 s)", back.Sub(upAt).Round(time.Millisecond))
}
