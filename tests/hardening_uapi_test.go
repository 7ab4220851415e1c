package tests

// The control socket (hardening): limits on connections and on what one
// transaction may make the daemon hold. The permissions of the files
// wghooks writes are in hardening_perms_test.go.

import (
	"bufio"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"runtime"
	"runtime/metrics"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wghooks/wghooks/device"
	"github.com/wghooks/wghooks/internal/testkit"
	"github.com/wghooks/wghooks/ipc"
	"github.com/wghooks/wghooks/uapi"
)

// hardLines is an endless "a=1\n" stream of n bytes, then a blank line.
type hardLines struct{ left int }

func (h *hardLines) Read(p []byte) (int, error) {
	if h.left <= 0 {
		if h.left == 0 {
			h.left--
			p[0] = '\n'
			return 1, nil
		}
		return 0, io.EOF
	}
	n := min(len(p), h.left) &^ 3
	if n == 0 {
		n = min(len(p), h.left)
	}
	for i := 0; i+4 <= n; i += 4 {
		copy(p[i:], "a=1\n")
	}
	h.left -= n
	return n, nil
}

// TestHardeningUAPIOversizedTransaction: a client that sends a set
// transaction past MaxTransaction in short lines (16 MiB of "a=1") gets
// EPROTO, is still served afterwards, and makes the daemon hold a
// bounded amount of memory meanwhile; another client's operations all
// succeed during it; the device is unchanged.
func TestHardeningUAPIOversizedTransaction(t *testing.T) {
	testkit.CheckLeaks(t)
	_, d := testkit.NewWghooks(t, "198.18.12.1", device.Config{HA: device.HAConfig{FlowEscapeOff: true}})
	dir, iface := testkit.ServeUAPI(t, d, "hardu0", nil), "hardu0"
	before := hardHeap()
	getBefore, _ := d.IpcGet()

	var peak atomic.Uint64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { // heap sampler
		defer wg.Done()
		var m runtime.MemStats
		for {
			runtime.ReadMemStats(&m)
			if m.HeapAlloc > peak.Load() {
				peak.Store(m.HeapAlloc)
			}
			select {
			case <-stop:
				return
			case <-time.After(10 * time.Millisecond):
			}
		}
	}()
	var others, othersFailed atomic.Int64
	go func() { // another client, busy all along
		defer wg.Done()
		c, err := ipc.Dial(dir, iface)
		if err != nil {
			othersFailed.Add(1)
			return
		}
		defer c.Close()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if err := c.Set(fmt.Sprintf("fwmark=%d", i%2)); err != nil {
				othersFailed.Add(1)
			}
			if _, err := c.Get(); err != nil {
				othersFailed.Add(1)
			}
			others.Add(1)
			time.Sleep(time.Millisecond)
		}
	}()

	c, err := net.Dial("unix", ipc.SocketPath(dir, iface))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Minute))
	r := bufio.NewReader(c)
	// 4M lines: past MaxTransaction, which counts what holding each line
	// costs besides its bytes.
	size := 16 << 20
	go func() {
		c.Write([]byte("set=1\n"))
		io.Copy(c, bufio.NewReaderSize(&hardLines{left: size}, 64<<10))
	}()
	reply, err := testkit.Reply(r)
	if err != nil || reply != "errno=-71\n" {
		t.Fatalf("reply to a %d MiB transaction: %q, %v; want errno=-71", size>>20, reply, err)
	}
	c.Write([]byte("get=1\n\n"))
	if got, err := testkit.Reply(r); err != nil || !strings.HasSuffix(got, "errno=0\n") {
		t.Fatalf("get after the oversized set: %q, %v", got, err)
	}
	close(stop)
	wg.Wait()
	if othersFailed.Load() != 0 || others.Load() == 0 {
		t.Errorf("the other client: %d operations, %d failed", others.Load(), othersFailed.Load())
	}
	d.IpcSet("fwmark=0")
	if got, _ := d.IpcGet(); got != getBefore {
		t.Errorf("device changed:\n%s\nwant\n%s", got, getBefore)
	}
	grew := float64(peak.Load()) - before
	t.Logf("a %d MiB transaction of %d-byte lines: heap %.0f MiB before, peak %.0f MiB (+%.0f MiB); the other client did %d set+get",
		size>>20, 4, before/(1<<20), float64(peak.Load())/(1<<20), grew/(1<<20), others.Load())
	// What one transaction may make the daemon hold: its bytes, read
	// twice (server, device), with what holding them line by line costs,
	// and garbage not yet collected.
	if limit := float64(4 * uapi.MaxTransaction); grew > limit {
		t.Errorf("heap grew by %.0f MiB for one transaction, more than %.0f MiB", grew/(1<<20), limit/(1<<20))
	}
	testkit.Eventually(t, 10*time.Second, "the heap to come back", func() bool { return hardHeap() < before+16<<20 })
}

// TestHardeningUAPITooManyClients: past ipc.MaxConns connections, new
// ones are closed at once; the connections already open keep working;
// once they go, new clients are served again.
func TestHardeningUAPITooManyClients(t *testing.T) {
	testkit.CheckLeaks(t)
	_, d := testkit.NewWghooks(t, "198.18.12.1", device.Config{HA: device.HAConfig{FlowEscapeOff: true}})
	dir, iface := testkit.ServeUAPI(t, d, "hardu0", nil), "hardu0"
	path := ipc.SocketPath(dir, iface)
	var held []net.Conn
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	for i := 0; i < ipc.MaxConns; i++ {
		c, err := net.Dial("unix", path)
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
		c.SetDeadline(time.Now().Add(10 * time.Second))
		c.Write([]byte("get=1\n\n")) // proves the server took it
		if got, err := testkit.Reply(bufio.NewReader(c)); err != nil || !strings.HasSuffix(got, "errno=0\n") {
			t.Fatalf("client %d: %q, %v", i, got, err)
		}
	}
	for i := 0; i < 8; i++ {
		c, err := net.Dial("unix", path)
		if err != nil {
			continue // refused outright is fine too
		}
		c.SetDeadline(time.Now().Add(10 * time.Second))
		c.Write([]byte("get=1\n\n"))
		if n, err := c.Read(make([]byte, 1)); err == nil {
			t.Errorf("connection %d past the limit was served (%d bytes)", ipc.MaxConns+i, n)
		}
		c.Close()
	}
	// The held ones still work.
	for i, c := range held {
		c.Write([]byte("get=1\n\n"))
		if got, err := testkit.Reply(bufio.NewReader(c)); err != nil || !strings.HasSuffix(got, "errno=0\n") {
			t.Fatalf("held client %d after the overflow: %q, %v", i, got, err)
		}
	}
	for _, c := range held {
		c.Close()
	}
	held = nil
	testkit.Eventually(t, 5*time.Second, "a new client to be served once the others left", func() bool {
		cl, err := ipc.Dial(dir, iface)
		if err != nil {
			return false
		}
		defer cl.Close()
		_, err = cl.Get()
		return err == nil
	})
}

// The worst case for the control socket's memory: every connection the
// server allows streaming a large set transaction at once, two of them
// past MaxTransaction, two that stop mid-transaction and never finish
// (TestHardeningUAPIManyOversizedClients; BenchmarkHardeningUAPIStorm
// compares the figure with plain upstream's UAPI server).
const (
	hardStormClients = ipc.MaxConns - 1 // the last slot is the observer's
	hardStormStalled = 2
	hardStormOver    = 2
	hardStormPeers   = 4 // peer sections in each transaction
	// hardStormScale divides MaxTransaction for the other clients'
	// transactions, so that all of them stream through -race on two
	// cores in well under a minute. Together they still ask for several
	// times HeldBudget at once, so the budget is hit; the stalled and
	// the oversized clients send full-size amounts.
	hardStormScale = 16
	// hardStormLineOverhead is what uapi charges for holding a line
	// besides its bytes and newline (its lineOverhead); sizes below are
	// in those units.
	hardStormLineOverhead = 32
)

// hardStormClient is one connection of the storm and its set transaction:
// hardStormPeers peer sections, each its public_key and its one
// allowed_ip line repeated until the section costs its share of cost.
type hardStormClient struct {
	index   int
	kind    string // "normal", "over" (past MaxTransaction), "stalled"
	cost    int
	keys    [hardStormPeers][32]byte
	conn    net.Conn
	reply   string // errno line of the reply; stalled clients get none
	err     error
	written chan struct{} // closed once a stalled client sent its part
}

func newHardStormClient(t testing.TB, index int, kind string, cost int) *hardStormClient {
	c := &hardStormClient{index: index, kind: kind, cost: cost, written: make(chan struct{})}
	for j := range c.keys {
		if _, err := randRead(c.keys[j][:]); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

// hardStormPlan is the storm's clients: hardStormStalled stalled ones
// (each sends 7/8 of a MaxTransaction/4 transaction, stopping in its
// last peer section), hardStormOver past MaxTransaction, the rest near
// MaxTransaction/scale.
func hardStormPlan(t testing.TB, scale int, stalled bool) []*hardStormClient {
	var cs []*hardStormClient
	for i := 0; i < hardStormClients; i++ {
		kind, cost := "normal", uapi.MaxTransaction/scale-(64<<10)
		switch {
		case i < hardStormStalled:
			if !stalled {
				continue
			}
			kind, cost = "stalled", uapi.MaxTransaction/4
		case i < hardStormStalled+hardStormOver:
			kind, cost = "over", uapi.MaxTransaction+(1<<20)
		}
		cs = append(cs, newHardStormClient(t, i, kind, cost))
	}
	return cs
}

func hardStormCost(line string) int { return len(line) + 1 + hardStormLineOverhead }

func (c *hardStormClient) pubHex(j int) string { return hex.EncodeToString(c.keys[j][:]) }

// write sends the transaction on w: whole, with its blank line, or for a
// stalled client everything but the second half of its last section.
func (c *hardStormClient) write(w io.Writer) error {
	bw := bufio.NewWriterSize(w, 64<<10)
	bw.WriteString("set=1\n")
	share := c.cost / hardStormPeers
	for j := range c.keys {
		pk := "public_key=" + c.pubHex(j)
		pad := fmt.Sprintf("allowed_ip=198.19.%d.%d/32", c.index, j+1)
		bw.WriteString(pk + "\n")
		left := share - hardStormCost(pk)
		if c.kind == "stalled" && j == len(c.keys)-1 {
			left /= 2
		}
		for ; left > 0; left -= hardStormCost(pad) {
			bw.WriteString(pad)
			if err := bw.WriteByte('\n'); err != nil {
				return err
			}
		}
	}
	if c.kind != "stalled" {
		bw.WriteByte('\n')
	}
	return bw.Flush()
}

// run sends the transaction once start is closed and reads the reply.
func (c *hardStormClient) run(start <-chan struct{}) {
	<-start
	c.conn.SetDeadline(time.Now().Add(3 * time.Minute))
	c.err = c.write(c.conn)
	if c.kind == "stalled" {
		close(c.written)
		return
	}
	if c.err == nil {
		c.reply, c.err = testkit.Reply(bufio.NewReader(c.conn))
	}
	c.conn.Close()
}

// hardStormObserver keeps one more connection busy with small gets.
type hardStormObserver struct {
	conn      net.Conn
	r         *bufio.Reader
	ok, fails atomic.Int64
	lastErr   atomic.Value
}

// newHardStormObserver connects to path and does one get, so the
// observer holds its connection slot before the storm.
func newHardStormObserver(t testing.TB, path string) *hardStormObserver {
	t.Helper()
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	o := &hardStormObserver{conn: c, r: bufio.NewReader(c)}
	if err := o.get(); err != nil {
		t.Fatal(err)
	}
	return o
}

func (o *hardStormObserver) get() error {
	o.conn.SetDeadline(time.Now().Add(time.Minute))
	if _, err := o.conn.Write([]byte("get=1\n\n")); err != nil {
		return err
	}
	got, err := testkit.Reply(o.r)
	if err == nil && !strings.HasSuffix(got, "errno=0\n") {
		err = fmt.Errorf("get reply ends %q", got[max(0, len(got)-20):])
	}
	return err
}

// loop does gets until stop is closed.
func (o *hardStormObserver) loop(stop <-chan struct{}) {
	for {
		select {
		case <-stop:
			return
		default:
		}
		if err := o.get(); err != nil {
			o.fails.Add(1)
			o.lastErr.Store(err)
			return
		}
		o.ok.Add(1)
		time.Sleep(5 * time.Millisecond)
	}
}

// hardHeapWatch samples the heap after a forced collection until
// stopped, two ways: what the collection found reachable (live, the
// runtime's /gc/heap/live:bytes) and HeapAlloc once it returned, which
// adds whatever the storm allocated, mostly garbage, while the
// collection swept: on two busy cores, close to as much again.
type hardHeapWatch struct {
	stop, done  chan struct{}
	live, alloc float64 // peaks, bytes
}

func newHardHeapWatch(every time.Duration) *hardHeapWatch {
	h := &hardHeapWatch{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(h.done)
		for {
			h.sample()
			select {
			case <-h.stop:
				return
			case <-time.After(every):
			}
		}
	}()
	return h
}

func (h *hardHeapWatch) sample() {
	h.alloc = max(h.alloc, hardHeap())
	live := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(live)
	h.live = max(h.live, float64(live[0].Value.Uint64()))
}

// end stops sampling and returns the peaks.
func (h *hardHeapWatch) end() (live, alloc float64) {
	close(h.stop)
	<-h.done
	h.sample()
	return h.live, h.alloc
}

// hardStormResult is what a storm did.
type hardStormResult struct {
	before      float64 // live heap before, bytes
	peak, alloc float64 // peaks during the storm (hardHeapWatch)
	took        time.Duration
	errnos      map[string]map[string]int // kind → errno line → clients
	gets        int64
}

// hardStorm dials every client (and the observer, which must be
// connected already), starts them at once and waits for each one's reply,
// sampling the live heap meanwhile. Stalled clients send their part
// first and stay connected; the caller closes them.
func hardStorm(t testing.TB, path string, obs *hardStormObserver, clients []*hardStormClient) hardStormResult {
	t.Helper()
	res := hardStormResult{before: hardHeap(), errnos: map[string]map[string]int{}}
	for _, c := range clients {
		conn, err := net.Dial("unix", path)
		if err != nil {
			t.Fatal(err)
		}
		c.conn = conn
		t.Cleanup(func() { conn.Close() })
	}
	start := make(chan struct{})
	var wg sync.WaitGroup
	for _, c := range clients {
		if c.kind == "stalled" {
			go c.run(start)
		}
	}
	close(start) // the stalled ones first: they hold their part before the others begin
	for _, c := range clients {
		if c.kind == "stalled" {
			<-c.written
			if c.err != nil {
				t.Fatalf("stalled client %d: %v", c.index, c.err)
			}
		}
	}
	watch := newHardHeapWatch(100 * time.Millisecond)
	stopObs := make(chan struct{})
	obsDone := make(chan struct{})
	go func() { defer close(obsDone); obs.loop(stopObs) }()
	began := time.Now()
	for _, c := range clients {
		if c.kind != "stalled" {
			wg.Add(1)
			go func() { defer wg.Done(); c.run(start) }()
		}
	}
	wg.Wait()
	res.took = time.Since(began)
	close(stopObs)
	<-obsDone
	res.peak, res.alloc = watch.end()
	res.gets = obs.ok.Load()
	for _, c := range clients {
		if c.kind == "stalled" {
			continue
		}
		if res.errnos[c.kind] == nil {
			res.errnos[c.kind] = map[string]int{}
		}
		key := strings.TrimSuffix(c.reply, "\n")
		if c.err != nil {
			key = c.err.Error()
		}
		res.errnos[c.kind][key]++
	}
	return res
}

// hardStormSettle closes the stalled clients and waits until what they
// sent is applied, whole: upstream applies what a client sent before it
// went away, and so do we.
func hardStormSettle(t testing.TB, d testkit.IpcGetter, clients []*hardStormClient) {
	t.Helper()
	stalled := 0
	for _, c := range clients {
		if c.kind == "stalled" {
			c.conn.Close()
			stalled++
		}
	}
	for deadline := time.Now().Add(time.Minute); stalled > 0; time.Sleep(20 * time.Millisecond) {
		keys := hardPeerKeys(t, d)
		applied := 0
		for _, c := range clients {
			if c.kind == "stalled" && c.present(keys) == hardStormPeers {
				applied++
			}
		}
		if applied == stalled {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d stalled clients' transactions applied a minute after they went away", applied, stalled)
		}
	}
}

// hardPeerKeys is the set of public keys (hex) a get reply lists.
func hardPeerKeys(t testing.TB, d testkit.IpcGetter) map[string]bool {
	t.Helper()
	get, err := d.IpcGet()
	if err != nil {
		t.Fatal(err)
	}
	keys := map[string]bool{}
	for _, l := range strings.Split(get, "\n") {
		if k, ok := strings.CutPrefix(l, "public_key="); ok {
			keys[k] = true
		}
	}
	return keys
}

// present counts how many of c's peers keys holds.
func (c *hardStormClient) present(keys map[string]bool) int {
	n := 0
	for j := range c.keys {
		if keys[c.pubHex(j)] {
			n++
		}
	}
	return n
}

// TestHardeningUAPIManyOversizedClients: all ipc.MaxConns connections at
// once, 59 of them sending a set transaction of many peer sections (near
// MaxTransaction/hardStormScale), two past MaxTransaction, two stopping
// mid-transaction and never finishing, while the last keeps doing small
// gets. Every finished transaction is answered errno=0 and applied
// whole, or refused with -ENOMEM (the shared budget) or -EPROTO (past
// MaxTransaction) and applied not at all; at least one meets the budget;
// every get succeeds meanwhile. The live heap peaks within HeldBudget
// plus what one maximal transaction costs applied alone (measured first,
// in the same run), and comes back afterwards.
func TestHardeningUAPIManyOversizedClients(t *testing.T) {
	testkit.CheckLeaks(t)
	_, d := testkit.NewWghooks(t, "198.18.12.1", device.Config{HA: device.HAConfig{FlowEscapeOff: true}})
	dir, iface := testkit.ServeUAPI(t, d, "hards0", nil), "hards0"
	path := ipc.SocketPath(dir, iface)
	obs := newHardStormObserver(t, path)
	oc := obs.conn
	before := hardHeap()

	// Baseline: one maximal transaction alone, on the observer's
	// connection (every other slot goes to the storm).
	one := newHardStormClient(t, 200, "normal", uapi.MaxTransaction-(64<<10))
	watch := newHardHeapWatch(100 * time.Millisecond)
	began := time.Now()
	go one.write(oc)
	oc.SetDeadline(time.Now().Add(2 * time.Minute))
	reply, err := testkit.Reply(obs.r)
	if err != nil || reply != "errno=0\n" {
		t.Fatalf("one maximal transaction: %q, %v", reply, err)
	}
	aloneLive, aloneAlloc := watch.end()
	alone := aloneLive - before
	t.Logf("one maximal transaction (%d MiB as uapi counts) alone: took %v, live heap +%.0f MiB (HeapAlloc after a collection +%.0f MiB)",
		one.cost>>20, time.Since(began).Round(time.Millisecond), alone/(1<<20), (aloneAlloc-before)/(1<<20))
	if n := one.present(hardPeerKeys(t, d)); n != hardStormPeers {
		t.Fatalf("one maximal transaction: %d of its %d peers present", n, hardStormPeers)
	}
	if err := d.IpcSet("replace_peers=true\n"); err != nil {
		t.Fatal(err)
	}

	clients := hardStormPlan(t, hardStormScale, true)
	res := hardStorm(t, path, obs, clients)
	t.Logf("storm of %d clients took %v; replies %v; %d gets meanwhile; live heap %.0f MiB before, peak %.0f MiB (+%.0f MiB; HeapAlloc after a collection +%.0f MiB); HeldBudget %d MiB",
		len(clients), res.took.Round(time.Millisecond), res.errnos, res.gets, res.before/(1<<20), res.peak/(1<<20),
		(res.peak-res.before)/(1<<20), (res.alloc-res.before)/(1<<20), ipc.HeldBudget>>20)

	if f := obs.fails.Load(); f != 0 || res.gets == 0 {
		t.Errorf("the observer: %d gets succeeded during the storm, %d failed (%v)", res.gets, f, obs.lastErr.Load())
	}
	keys := hardPeerKeys(t, d)
	enomem := 0
	for _, c := range clients {
		if c.kind == "stalled" {
			continue
		}
		n := c.present(keys)
		want := map[string]bool{"errno=-12\n": true}
		if c.kind == "over" {
			want["errno=-71\n"] = true
		} else {
			want["errno=0\n"] = true
		}
		switch {
		case c.err != nil:
			t.Errorf("%s client %d: %v", c.kind, c.index, c.err)
		case !want[c.reply]:
			t.Errorf("%s client %d: reply %q", c.kind, c.index, c.reply)
		case c.reply == "errno=0\n" && n != hardStormPeers, c.reply != "errno=0\n" && n != 0:
			t.Errorf("%s client %d: reply %q but %d of its %d peers present", c.kind, c.index, c.reply, n, hardStormPeers)
		}
		if c.reply == "errno=-12\n" {
			enomem++
		}
	}
	if enomem == 0 {
		t.Errorf("no transaction met the budget (HeldBudget %d MiB): the storm did not test it", ipc.HeldBudget>>20)
	}
	// The stalled clients still hold their part; once they go, what they
	// sent is applied whole, as upstream applies what a client sent
	// before it went away.
	for _, c := range clients {
		if n := c.present(keys); c.kind == "stalled" && n != 0 {
			t.Errorf("stalled client %d: %d of its peers present before it finished", c.index, n)
		}
	}
	hardStormSettle(t, d, clients)

	// Memory: the budget's worth of lines in flight plus one maximal
	// transaction being applied (its own lines, upstream's work and
	// ours), and a fixed slack for the connections' buffers, the test's
	// own 63 writers, the peers installed and garbage a collection can
	// not yet free.
	const slack = 32 << 20
	if limit := float64(ipc.HeldBudget) + alone + slack; res.peak-res.before > limit {
		t.Errorf("live heap grew by %.0f MiB during the storm, more than HeldBudget %d MiB + one maximal transaction alone %.0f MiB + %d MiB",
			(res.peak-res.before)/(1<<20), ipc.HeldBudget>>20, alone/(1<<20), slack>>20)
	}
	if err := d.IpcSet("replace_peers=true\n"); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 30*time.Second, "the heap to come back after the storm", func() bool { return hardHeap() < before+16<<20 })
}
