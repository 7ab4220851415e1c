package tests

// Helpers for the bogus-handshake flood (hardening): a flooder that sends
// four kinds of junk initiations from many loopback source addresses and
// counts the cookie replies it gets back, and a plain upstream client
// that keeps a copy of its own first initiation for replaying.

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	mrand "math/rand/v2"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/curve25519"
	wgconn "golang.zx2c4.com/wireguard/conn"
	wgdevice "golang.zx2c4.com/wireguard/device"
	"golang.zx2c4.com/wireguard/tai64n"
	"golang.zx2c4.com/wireguard/tun/netstack"

	"wghooks/conn"
)

// Flood kinds, sent in turn by every source.
const (
	hardFloodRandom   = iota // random bytes of random length, any type byte
	hardFloodGarbage         // initiation-sized, type 1, valid mac1, garbage inside
	hardFloodStranger        // genuine initiation from a key the provider does not know
	hardFloodReplay          // replay of a real initiation of the known peer
	hardFloodKinds
)

// hardFlood describes one flood.
type hardFlood struct {
	Target    netip.AddrPort // the gateway's UDP address
	ServerPub [32]byte       // the gateway's public key (for mac1)
	Replay    []byte         // a real initiation to replay; nil skips that kind
	Strangers int            // distinct unknown keys, each sending genuine initiations
	Sources   int            // source addresses 127.0.0.2 ... (each its own socket)
	PPS       int            // packets per second, all sources together
	Duration  time.Duration
	// MaxPackets bounds the flood in count as well as in time.
	MaxPackets int64
}

// hardFloodResult is what a flood saw.
type hardFloodResult struct {
	Sent    int64
	Cookies int64 // cookie replies (type 3) received by the flooders
	Other   int64 // anything else received (a response would be a bug)
}

func (r hardFloodResult) String() string {
	return fmt.Sprintf("FLOOD sent=%d cookies=%d other=%d", r.Sent, r.Cookies, r.Other)
}

// run floods until Duration or MaxPackets, then closes its sockets and
// waits for its goroutines.
func (f hardFlood) run() (hardFloodResult, error) {
	var strangers []*conn.Sealer
	for i := 0; i < f.Strangers; i++ {
		var priv, eph [32]byte
		binary.LittleEndian.PutUint64(priv[:], mrand.Uint64())
		binary.LittleEndian.PutUint64(priv[8:], mrand.Uint64())
		binary.LittleEndian.PutUint64(eph[:], mrand.Uint64())
		binary.LittleEndian.PutUint64(eph[8:], mrand.Uint64())
		priv[0], eph[0] = priv[0]|1, eph[0]|1
		pub, err := curve25519.X25519(priv[:], curve25519.Basepoint)
		if err != nil {
			return hardFloodResult{}, err
		}
		s, err := conn.NewSealer([32]byte(pub), priv, f.ServerPub, eph)
		if err != nil {
			return hardFloodResult{}, err
		}
		strangers = append(strangers, s)
	}
	var sent, cookies, other atomic.Int64
	var socks []*net.UDPConn
	for i := 0; i < f.Sources; i++ {
		src := netip.AddrFrom4([4]byte{127, 0, byte((i + 2) >> 8), byte(i + 2)})
		c, err := net.DialUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(src, 0)), net.UDPAddrFromAddrPort(f.Target))
		if err != nil {
			for _, c := range socks {
				c.Close()
			}
			return hardFloodResult{}, fmt.Errorf("failed to open flood socket on %s: %w", src, err)
		}
		socks = append(socks, c)
	}
	var wg sync.WaitGroup
	end := time.Now().Add(f.Duration)
	perSource := max(f.PPS/max(f.Sources, 1), 1)
	const burst = 8
	gap := time.Duration(burst) * time.Second / time.Duration(perSource)
	start := tai64n.Now()
	var stamp atomic.Uint64
	for i, c := range socks {
		wg.Add(2)
		go func() { // reader: counts what the gateway answers
			defer wg.Done()
			buf := make([]byte, 2048)
			for {
				n, err := c.Read(buf)
				if err != nil {
					return // closed at the end of the flood
				}
				if n == conn.MessageCookieReplySize && buf[0] == conn.MessageCookieReply {
					cookies.Add(1)
				} else {
					other.Add(1)
				}
			}
		}()
		go func() { // writer
			defer wg.Done()
			rng := mrand.New(mrand.NewPCG(uint64(i), uint64(time.Now().UnixNano())))
			var gen wgdevice.CookieGenerator
			gen.Init(f.ServerPub)
			buf := make([]byte, 256)
			next := time.Now()
			for k := i; time.Now().Before(end); {
				for j := 0; j < burst; j++ {
					if sent.Add(1) > f.MaxPackets {
						return
					}
					var msg []byte
					switch kind := k % hardFloodKinds; {
					case kind == hardFloodGarbage:
						msg = buf[:conn.MessageInitiationSize]
						hardFill(rng, msg)
						binary.LittleEndian.PutUint32(msg, conn.MessageInitiation)
						gen.AddMacs(msg)
					case kind == hardFloodStranger && len(strangers) > 0:
						ts := start
						binary.BigEndian.PutUint64(ts[4:], binary.BigEndian.Uint64(ts[4:])+stamp.Add(1))
						msg = strangers[rng.IntN(len(strangers))].Seal(rng.Uint32(), ts)
					case kind == hardFloodReplay && f.Replay != nil:
						msg = f.Replay
					default:
						msg = buf[:1+rng.IntN(len(buf)-1)]
						hardFill(rng, msg)
						if len(msg) >= 4 && rng.IntN(2) == 0 {
							binary.LittleEndian.PutUint32(msg, uint32(1+rng.IntN(4)))
						}
					}
					k++
					c.Write(msg)
				}
				next = next.Add(gap)
				if d := min(time.Until(next), time.Until(end)); d > 0 {
					time.Sleep(d)
				}
			}
		}()
	}
	// Stop: wait for the writers' time, give late answers 200 ms, close.
	time.Sleep(time.Until(end) + 200*time.Millisecond)
	for _, c := range socks {
		c.Close()
	}
	wg.Wait()
	return hardFloodResult{Sent: min(sent.Load(), f.MaxPackets), Cookies: cookies.Load(), Other: other.Load()}, nil
}

func hardFill(rng *mrand.Rand, b []byte) {
	for i := 0; i+8 <= len(b); i += 8 {
		binary.LittleEndian.PutUint64(b[i:], rng.Uint64())
	}
	for i := len(b) &^ 7; i < len(b); i++ {
		b[i] = byte(rng.Uint32())
	}
}

// Environment of the flood child process (TestHardeningFloodChild).
const (
	hardFloodEnv = "WGHOOKS_HARDENING_FLOOD" // target ip:port,server pub hex,replay hex,strangers,sources,pps,ms,max
)

func (f hardFlood) env() string {
	return fmt.Sprintf("%s=%s,%s,%s,%d,%d,%d,%d,%d", hardFloodEnv, f.Target, hex.EncodeToString(f.ServerPub[:]),
		hex.EncodeToString(f.Replay), f.Strangers, f.Sources, f.PPS, f.Duration.Milliseconds(), f.MaxPackets)
}

func parseHardFlood(s string) (hardFlood, error) {
	var f hardFlood
	p := strings.Split(s, ",")
	if len(p) != 8 {
		return f, fmt.Errorf("failed to parse flood %q: want 8 fields", s)
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
type hardRecordBind struct {
	wgconn.Bind
	mu    sync.Mutex
	first []byte
}

func (b *hardRecordBind) Send(bufs [][]byte, ep wgconn.Endpoint) error {
	for _, buf := range bufs {
		if len(buf) == conn.MessageInitiationSize && buf[0] == conn.MessageInitiation {
			b.mu.Lock()
			if b.first == nil {
				b.first = append([]byte(nil), buf...)
			}
			b.mu.Unlock()
		}
	}
	return b.Bind.Send(bufs, ep)
}

func (b *hardRecordBind) firstInitiation() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.first
}

// hardClient is a plain upstream client of server on netstack (as
// newJITClient builds one) whose bind records its first initiation.
type hardClient struct {
	*node
	dev  *wgdevice.Device
	rec  *hardRecordBind
	bind *jitCountingBind
}

func newHardClient(tb testing.TB, addr string, server *node) *hardClient {
	tb.Helper()
	n := &node{key: newKeypair(tb), addr: netip.MustParseAddr(addr)}
	tdev, tnet, err := netstack.CreateNetTUN([]netip.Addr{n.addr}, nil, 1420)
	if err != nil {
		tb.Fatal(err)
	}
	n.net = tnet
	rec := &hardRecordBind{Bind: wgconn.NewDefaultBind()}
	b := &jitCountingBind{Bind: rec}
	d := wgdevice.NewDevice(tdev, b, wgdevice.NewLogger(wgdevice.LogLevelError, "client "))
	tb.Cleanup(d.Close)
	if err := d.IpcSet(uapiCfg("private_key", n.key.privHex(), "listen_port", "0")); err != nil {
		tb.Fatal(err)
	}
	if err := d.Up(); err != nil {
		tb.Fatal(err)
	}
	n.port = listenPortOf(tb, d)
	peerWith(tb, d, server, true)
	return &hardClient{node: n, dev: d, rec: rec, bind: b}
}
