package tests

// Helpers for the bogus-handshake flood (hardening): the flood itself is
// internal/floodgen's (four kinds of junk initiations from many loopback
// source addresses, counting the cookie replies); here are its encoding
// for the benchmark's child process, and a plain upstream client that
// keeps a copy of its own first initiation for replaying.

import (
	"context"
	"encoding/hex"
	"fmt"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	wgconn "golang.zx2c4.com/wireguard/conn"
	wgdevice "golang.zx2c4.com/wireguard/device"

	"github.com/wghooks/wghooks/internal/floodgen"
	"github.com/wghooks/wghooks/internal/testkit"
)

// hardFlood is one flood, hardFloodResult what it saw.
type (
	hardFlood       floodgen.Flood
	hardFloodResult = floodgen.Result
)

// run floods until Duration or MaxPackets, then closes its sockets and
// waits for its goroutines.
func (f hardFlood) run() (hardFloodResult, error) {
	return floodgen.Flood(f).Run(context.Background())
}

// Environment of the flood child process (TestHardeningFloodChild).
const (
	hardFloodEnv = "WGTEST_HARDENING_FLOOD" // target ip:port,server pub hex,replay hex,strangers,sources,pps,ms,max,spoof ip:port or empty
)

func (f hardFlood) env() string {
	spoof := ""
	if f.Spoof.IsValid() {
		spoof = f.Spoof.String()
	}
	return fmt.Sprintf("%s=%s,%s,%s,%d,%d,%d,%d,%d,%s", hardFloodEnv, f.Target, hex.EncodeToString(f.ServerPub[:]),
		hex.EncodeToString(f.Replay), f.Strangers, f.Sources, f.PPS, f.Duration.Milliseconds(), f.MaxPackets, spoof)
}

func parseHardFlood(s string) (hardFlood, error) {
	var f hardFlood
	p := strings.Split(s, ",")
	if len(p) != 9 {
		return f, fmt.Errorf("failed to parse flood %q: want 9 fields", s)
	}
	var err error
	if f.Target, err = netip.ParseAddrPort(p[0]); err != nil {
		return f, err
	}
	pub, err := hex.DecodeString(p[1])
	if err != nil || len(pub) != 32 {
		return f, fmt.Errorf("failed to parse flood server key %q", p[1])
	}
	copy(f.ServerPub[:], pub)
	if f.Replay, err = hex.DecodeString(p[2]); err != nil {
		return f, err
	}
	if len(f.Replay) == 0 {
		f.Replay = nil
	}
	n := make([]int64, 5)
	for i := range n {
		if n[i], err = strconv.ParseInt(p[3+i], 10, 64); err != nil {
			return f, fmt.Errorf("failed to parse flood field %q: %w", p[3+i], err)
		}
	}
	f.Strangers, f.Sources, f.PPS = int(n[0]), int(n[1]), int(n[2])
	f.Duration, f.MaxPackets = time.Duration(n[3])*time.Millisecond, n[4]
	if p[8] != "" {
		if f.Spoof, err = netip.ParseAddrPort(p[8]); err != nil {
			return f, err
		}
	}
	return f, nil
}

// TestHardeningFloodChild is the flooding process of
// BenchmarkHardeningFlood; it only runs as that benchmark's child.
func TestHardeningFloodChild(t *testing.T) {
	spec := os.Getenv(hardFloodEnv)
	if spec == "" {
		t.Skip("runs only as BenchmarkHardeningFlood's child")
	}
	f, err := parseHardFlood(spec)
	if err != nil {
		t.Fatal(err)
	}
	res, err := f.run()
	if err != nil {
		t.Fatal(err)
	}
	fmt.Println(res)
}

// hardRecordBind is a bind that keeps a copy of the first handshake
// initiation sent through it.
type hardRecordBind struct{ *floodgen.Recorder }

func (b hardRecordBind) firstInitiation() []byte { return b.FirstInitiation() }

// hardClient is a plain upstream client of server on netstack (as
// newJITClient builds one) whose bind records its first initiation.
type hardClient struct {
	*testkit.Node
	dev  *wgdevice.Device
	rec  *hardRecordBind
	bind *testkit.CountingBind
}

func newHardClient(tb testing.TB, addr string, server *testkit.Node) *hardClient {
	tb.Helper()
	rec := &hardRecordBind{floodgen.NewRecorder(wgconn.NewDefaultBind())}
	b := testkit.NewCountingBind(rec)
	n, d := testkit.NewUpstream(tb, addr, b)
	testkit.AddPeer(tb, d, server, true)
	return &hardClient{Node: n, dev: d, rec: rec, bind: b}
}
