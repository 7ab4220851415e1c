package tests

// Just-in-time peers across a gateway restart: the state file records the
// peers the old process installed just in time, and the new process asks
// the provider about them again, reinstalls the ones it still knows at
// their saved endpoints and sends each one handshake initiation, so their
// clients resume without waiting for their own 15 s timer. The clients
// are plain upstream and never touched.

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wghooks/wghooks/device"
	"github.com/wghooks/wghooks/hooks"
	"github.com/wghooks/wghooks/internal/testkit"
)

const restartJITGatewayAddr = "198.18.9.1"

// restartJITRig is what every process of one gateway shares: key, port,
// state file and provider.
type restartJITRig struct {
	p         *jitProvider
	key       testkit.Keypair
	statePath string
	port      uint16

	lookupTimeout   time.Duration // 0: the default
	restoreDeadline time.Duration // 0: the default
}

func newRestartJITRig(t testing.TB) *restartJITRig {
	return &restartJITRig{p: newJITProvider(), key: testkit.NewKeypair(), statePath: restartStatePath(t), port: testkit.FreeUDPPort(t)}
}

// config is the gateway's configuration; peers are its static ones.
func (r *restartJITRig) config() device.Config {
	cfg := device.Config{
		JIT:     device.JITConfig{Provider: r.p, LookupTimeout: r.lookupTimeout, RestoreDeadline: r.restoreDeadline},
		Restart: device.RestartConfig{StateFile: r.statePath},
	}
	cfg.HA.FlowEscapeOff = true
	return cfg
}

// gateway starts one process of the just-in-time gateway (no static
// peers).
func (r *restartJITRig) gateway(t testing.TB) *restartServer {
	t.Helper()
	return startRestartServer(t, r.key, restartJITGatewayAddr, r.port, "", r.config(), restartDaemonFlow)
}

// client starts a plain upstream client at addr whose peer is the
// gateway; known marks it known to the provider.
func (r *restartJITRig) client(t testing.TB, addr string, known bool) *restartClient {
	t.Helper()
	c := newRestartClient(t, addr)
	if err := c.dev.IpcSet(restartClientPeerConf(&testkit.Node{Key: r.key, Addr: netip.MustParseAddr(restartJITGatewayAddr)}, r.port, 0)); err != nil {
		t.Fatal(err)
	}
	if known {
		r.p.set(c.Key.Pub, c.Addr)
	}
	return c
}

// answerAfter makes the provider call first(ctx, key) on each lookup: an
// error from it is the answer, otherwise the provider's map is.
func (r *restartJITRig) answerAfter(first func(ctx context.Context, k hooks.PublicKey) error) {
	p := r.p
	p.mu.Lock()
	defer p.mu.Unlock()
	p.answer = func(ctx context.Context, k hooks.PublicKey) (hooks.PeerConfig, error) {
		if err := first(ctx, k); err != nil {
			return hooks.PeerConfig{}, err
		}
		p.mu.Lock()
		defer p.mu.Unlock()
		cfg, ok := p.peers[k]
		if !ok {
			return hooks.PeerConfig{}, hooks.ErrUnknownPeer
		}
		return cfg, nil
	}
}

// firstProcess runs the gateway's first process until a known client at
// 198.18.9.2 has made first contact, and closes it: the state file lists
// the client as just in time.
func (r *restartJITRig) firstProcess(t testing.TB) *restartClient {
	t.Helper()
	client := r.client(t, "198.18.9.2", true)
	s1 := r.gateway(t)
	restartJITFirstContact(t, client, s1)
	s1.close()
	return client
}

// restartJITFirstContact waits until c's ping goes through s (the
// gateway installs c just in time on its first initiation).
func restartJITFirstContact(t testing.TB, c *restartClient, s *restartServer) {
	t.Helper()
	testkit.Eventually(t, 10*time.Second, "a ping from "+c.Addr.String()+" through the first gateway", func() bool {
		return c.Ping(s.Addr, 500*time.Millisecond) == nil
	})
}

// restartJITSavedKeys returns the entries of the state file's "jit"
// section (the peers it lists as just in time).
func restartJITSavedKeys(t *testing.T, statePath string) string {
	t.Helper()
	f := restartJITReadState(t, statePath)
	sec, _ := f["sections"].(map[string]any)
	jit, _ := sec["jit"].(map[string]any)
	b, err := json.Marshal(jit["peers"])
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// restartJITReadState reads the state file as generic JSON.
func restartJITReadState(t *testing.T, statePath string) map[string]any {
	t.Helper()
	data, err := os.ReadFile(statePath)
	if err != nil {
		t.Fatalf("failed to read the state file: %v", err)
	}
	var f map[string]any
	if err := json.Unmarshal(data, &f); err != nil {
		t.Fatalf("failed to parse the state file: %v\n%s", err, data)
	}
	return f
}

// restartJITWriteState replaces the state file with f.
func restartJITWriteState(t *testing.T, statePath string, f map[string]any) {
	t.Helper()
	data, err := json.Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(statePath, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

func restartJITKey(k testkit.Keypair) string { return base64.StdEncoding.EncodeToString(k.Pub[:]) }

// restartJITScenario is the restart benchmark's row for a just-in-time
// peer. Plain upstream has no just-in-time peers; its nearest setup is a
// server that preloads the peer without an endpoint, which restartRun
// runs for this scenario.
var restartJITScenario = restartScenario{"e", "just-in-time peer (upstream: preloaded, no endpoint)", false, false, restartContinuous}

// restartJITRun restarts a just-in-time gateway whose one client was
// installed just in time and keeps pinging every pingEvery, and waits up
// to window for its traffic to flow again.
func restartJITRun(tb testing.TB, window, pingEvery time.Duration) (restartOutcome, *restartJITRig, *restartClient) {
	tb.Helper()
	r := newRestartJITRig(tb)
	client := r.client(tb, "198.18.9.2", true)
	s1 := r.gateway(tb)
	restartJITFirstContact(tb, client, s1)
	pinger := testkit.NewPinger(tb, &client.Node, s1.Addr)
	pinger.Every(pingEvery)
	s1.close()
	time.Sleep(500 * time.Millisecond) // the outage: the client keeps sending on its old session

	s2 := r.gateway(tb)
	out := restartOutcome{server: s2}
	var at time.Time
	out.recovered = testkit.Poll(window, func() bool {
		var ok bool
		at, _, ok = pinger.FirstAnswer(s2.upAt, 2*pingEvery)
		return ok
	})
	if out.recovered {
		out.after = at.Sub(s2.upAt)
	}
	out.initSent, out.initRecv = s2.bind.InitSent.Load(), s2.bind.InitRecv.Load()
	pinger.Stop()
	return out, r, client
}

// A client installed just in time keeps sending across a gateway restart:
// the new gateway process reinstalls it from the state file and sends the
// one initiation that resumes its traffic; the client sends none.
func TestRestartJITPeerResumes(t *testing.T) {
	testkit.CheckLeaks(t)
	// Generous: the client's own timer would start a handshake ~15 s
	// after its data went unanswered; the counts below tell who did.
	out, r, client := restartJITRun(t, 30*time.Second, 50*time.Millisecond)
	s2 := out.server
	if !out.recovered {
		t.Fatalf("traffic did not flow again through the new gateway (initiations sent %d, received %d)", out.initSent, out.initRecv)
	}
	if out.initSent != 1 || out.initRecv != 0 {
		t.Errorf("until traffic flowed the new gateway sent %d initiations and received %d; want exactly 1 sent by the gateway, none from the client", out.initSent, out.initRecv)
	}
	if testkit.Poll(time.Second, func() bool { return s2.bind.Initiations() > 1 }) {
		t.Errorf("%d initiations after recovery, want one handshake", s2.bind.Initiations())
	}
	if n := r.p.callsFor(client.Key.Pub); n != 2 {
		t.Errorf("provider asked %d times about the client, want 2 (first contact, then the restore)", n)
	}
	if !s2.ours.HasPeer(client.Key.Pub) {
		t.Error("the restored client is not a peer of the new gateway")
	}
	if !strings.Contains(s2.log.String(), "restored 1 just-in-time peers from the state file, 0 no longer known, 0 lookups failed") {
		t.Errorf("no restore summary in the log:\n%s", s2.log)
	}
	// The restored peer is still just in time: the next file lists it.
	s2.close()
	if saved := restartJITSavedKeys(t, r.statePath); !strings.Contains(saved, restartJITKey(client.Key)) {
		t.Errorf("the second state file does not list the restored client as just in time: %q", saved)
	}
	t.Logf("traffic back %v after the new gateway was up; initiations: %d from the gateway, %d from the client", out.after.Round(time.Millisecond), out.initSent, out.initRecv)
}

// A client that starts a handshake of its own while the restore is still
// asking the provider gets its initiation answered, and no initiation
// from the gateway that would cross it; the provider is asked once.
func TestRestartJITClientInitiatesDuringRestore(t *testing.T) {
	testkit.CheckLeaks(t)
	r := newRestartJITRig(t)
	client := r.firstProcess(t)

	release := make(chan struct{})
	t.Cleanup(func() {
		select {
		case <-release:
		default:
			close(release)
		}
	})
	r.answerAfter(func(ctx context.Context, _ hooks.PublicKey) error {
		select {
		case <-release:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	})
	calls := r.p.callsFor(client.Key.Pub)

	s2 := r.gateway(t)
	// The restore's lookup is under way (a client that knocks before it
	// starts is provisioned ahead of the queue instead: the next test).
	testkit.Eventually(t, 5*time.Second, "the restore to ask the provider", func() bool { return r.p.callsFor(client.Key.Pub) > calls })
	// The client starts over on its own: its next packet initiates.
	if peer := client.dev.LookupPeer(r.key.Pub); peer != nil {
		peer.ExpireCurrentKeypairs()
	}
	pinger := testkit.NewPinger(t, &client.Node, s2.Addr)
	pinger.Every(50 * time.Millisecond)
	// Held by the device, not only read from the socket: the restore must
	// find it there when the provider answers.
	testkit.Eventually(t, 5*time.Second, "the new gateway to hold the client's initiation", func() bool {
		return strings.Contains(s2.log.String(), "held: its lookup is under way")
	})
	close(release)
	testkit.Eventually(t, 10*time.Second, "traffic through the new gateway", func() bool {
		_, _, ok := pinger.FirstAnswer(s2.upAt, 100*time.Millisecond)
		return ok
	})
	pinger.Stop()
	if sent, recv := s2.bind.InitSent.Load(), s2.bind.InitRecv.Load(); sent != 0 || recv != 1 {
		t.Errorf("the new gateway sent %d initiations and received %d, want 0 sent (the client was handshaking) and 1 received", sent, recv)
	}
	if n := r.p.callsFor(client.Key.Pub) - calls; n != 1 {
		t.Errorf("provider asked %d times about the client after the restart, want 1 (the restore's lookup answers its initiation too)", n)
	}
	if !strings.Contains(s2.log.String(), "answering its own initiation") {
		t.Errorf("the restore did not answer the client's held initiation; log:\n%s", s2.log)
	}
}

// A client that knocks while the restore still has its key queued behind
// others (whose lookups hang) is provisioned at once through the normal
// path, not after them; the restore skips it and says so.
func TestRestartJITClientAheadOfQueue(t *testing.T) {
	testkit.CheckLeaks(t)
	r := newRestartJITRig(t)
	// The lookups ahead hang until released, not until a timeout frees
	// their slots: the client gets in only by going ahead of them.
	r.lookupTimeout = time.Minute
	client := r.firstProcess(t)
	q := restartJITQueueBehind(t, r, client)
	calls := r.p.callsFor(client.Key.Pub)

	s2 := r.gateway(t)
	q.waitAhead(t)
	if peer := client.dev.LookupPeer(r.key.Pub); peer != nil {
		peer.ExpireCurrentKeypairs()
	}
	if err := client.Ping(s2.Addr, 20*time.Second); err != nil {
		t.Fatalf("the client knocked while queued and did not get through: %v\n%s", err, s2.log)
	}
	if strings.Contains(s2.log.String(), "restored 8") {
		t.Fatal("the restore finished before the client got in: the test did not queue it")
	}
	if n := r.p.callsFor(client.Key.Pub) - calls; n != 1 {
		t.Errorf("provider asked %d times about the client after the restart, want 1 (its own knock)", n)
	}
	if sent := s2.bind.InitSent.Load(); sent != 0 {
		t.Errorf("the gateway sent %d initiations, want 0 (the client's own was answered)", sent)
	}
	q.release()
	summary := "restored 8 just-in-time peers from the state file, 0 no longer known, 0 lookups failed, 1 came back first"
	testkit.Eventually(t, 15*time.Second, "the restore summary", func() bool { return strings.Contains(s2.log.String(), summary) })
}

// A restore that runs past JITConfig.RestoreDeadline leaves the keys it
// has not reached to their clients: they are not installed, the summary
// counts them, and such a client still gets in when it knocks.
func TestRestartJITRestoreDeadline(t *testing.T) {
	testkit.CheckLeaks(t)
	r := newRestartJITRig(t)
	r.lookupTimeout = time.Minute
	r.restoreDeadline = time.Second
	client := r.firstProcess(t)
	q := restartJITQueueBehind(t, r, client)

	s2 := r.gateway(t)
	q.waitAhead(t)
	testkit.Eventually(t, 10*time.Second, "the restore to give up on the queued client", func() bool {
		return strings.Contains(s2.log.String(), "restoring just-in-time peers took over 1s: 1 left for their clients to bring back")
	})
	if s2.ours.HasPeer(client.Key.Pub) {
		t.Error("the client was installed although the restore gave up before reaching it")
	}
	q.release()
	summary := "restored 8 just-in-time peers from the state file, 0 no longer known, 0 lookups failed, 0 came back first (0 skipped, 1 not reached)"
	testkit.Eventually(t, 15*time.Second, "the restore summary", func() bool { return strings.Contains(s2.log.String(), summary) })
	if peer := client.dev.LookupPeer(r.key.Pub); peer != nil {
		peer.ExpireCurrentKeypairs()
	}
	if err := client.Ping(s2.Addr, 20*time.Second); err != nil {
		t.Fatalf("the client left to itself did not get back in: %v", err)
	}
}

// restartJITQueue is eight just-in-time peers ahead of a client in the
// restore's queue, whose lookups hang until release (also at cleanup).
type restartJITQueue struct {
	p       *jitProvider
	ahead   []testkit.Keypair
	release func()
}

// restartJITQueueBehind adds to the state file eight just-in-time peers
// that handshook more recently than client, enough to fill every restore
// lookup, and makes the provider's lookups of them hang until released:
// client's key then waits in the restore's queue.
func restartJITQueueBehind(t *testing.T, r *restartJITRig, client *restartClient) *restartJITQueue {
	t.Helper()
	q := &restartJITQueue{p: r.p}
	f := restartJITReadState(t, r.statePath)
	sec, _ := f["sections"].(map[string]any)
	jit, _ := sec["jit"].(map[string]any)
	peers, ok := jit["peers"].([]any)
	if !ok {
		t.Fatalf("state file has no jit section to extend: %v", f)
	}
	for i := range 8 {
		k := testkit.NewKeypair()
		q.ahead = append(q.ahead, k)
		r.p.set(k.Pub, netip.AddrFrom4([4]byte{198, 18, 10, byte(i + 1)}))
		peers = append(peers, map[string]any{
			"public_key":     restartJITKey(k),
			"endpoint":       fmt.Sprintf("127.0.0.1:%d", 40000+i),
			"last_handshake": time.Now().Add(time.Minute).UTC().Format(time.RFC3339Nano),
		})
	}
	jit["peers"] = peers
	restartJITWriteState(t, r.statePath, f)
	gate := make(chan struct{})
	var once sync.Once
	q.release = func() { once.Do(func() { close(gate) }) }
	t.Cleanup(q.release)
	r.answerAfter(func(ctx context.Context, k hooks.PublicKey) error {
		if k == client.Key.Pub {
			return nil
		}
		select {
		case <-gate:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	})
	return q
}

// waitAhead waits until the restore asks about every peer ahead of the
// client.
func (q *restartJITQueue) waitAhead(t *testing.T) {
	t.Helper()
	testkit.Eventually(t, 5*time.Second, "the restore's lookups of the peers ahead to start", func() bool {
		n := 0
		for _, k := range q.ahead {
			n += q.p.callsFor(k.Pub)
		}
		return n == len(q.ahead)
	})
}

// The provider is the authority: a key it no longer knows, or whose lookup
// fails, is not restored and gets no initiation; the others are.
func TestRestartJITUnknownAndFailedNotRestored(t *testing.T) {
	testkit.CheckLeaks(t)
	r := newRestartJITRig(t)
	kept := r.client(t, "198.18.9.2", true)
	revoked := r.client(t, "198.18.9.3", true)
	failing := r.client(t, "198.18.9.4", true)
	s1 := r.gateway(t)
	for _, c := range []*restartClient{kept, revoked, failing} {
		restartJITFirstContact(t, c, s1)
	}
	s1.close()
	saved := restartJITSavedKeys(t, r.statePath)
	for _, c := range []*restartClient{kept, revoked, failing} {
		if !strings.Contains(saved, restartJITKey(c.Key)) {
			t.Fatalf("the state file does not list %s as just in time: %q", c.Addr, saved)
		}
	}
	revokedInits, failingInits := revoked.bind.InitRecv.Load(), failing.bind.InitRecv.Load()

	r.p.del(revoked.Key.Pub)
	r.answerAfter(func(_ context.Context, k hooks.PublicKey) error {
		if k == failing.Key.Pub {
			return errors.New("control plane unavailable")
		}
		return nil
	})

	s2 := r.gateway(t)
	summary := "restored 1 just-in-time peers from the state file, 1 no longer known, 1 lookups failed"
	testkit.Eventually(t, 15*time.Second, "the restore summary", func() bool { return strings.Contains(s2.log.String(), summary) })
	testkit.Eventually(t, 10*time.Second, "the kept client's ping through the new gateway", func() bool {
		return kept.Ping(s2.Addr, 500*time.Millisecond) == nil
	})
	// Give any stray initiation time to arrive before asserting none did.
	testkit.Poll(time.Second, func() bool { return false })
	if n := revoked.bind.InitRecv.Load() - revokedInits; n != 0 {
		t.Errorf("the client the provider no longer knows got %d initiations from the new gateway, want 0", n)
	}
	if n := failing.bind.InitRecv.Load() - failingInits; n != 0 {
		t.Errorf("the client whose lookup failed got %d initiations from the new gateway, want 0", n)
	}
	for _, c := range []*restartClient{revoked, failing} {
		if s2.ours.HasPeer(c.Key.Pub) {
			t.Errorf("%s was restored though the provider did not vouch for it", c.Addr)
		}
	}
	if s2.bind.InitSent.Load() != 1 {
		t.Errorf("the new gateway sent %d initiations, want 1 (to the kept client)", s2.bind.InitSent.Load())
	}
}

// A state file written before just-in-time entries existed (no "jit"
// field) loads on a just-in-time gateway: its static peer's learned
// endpoint is restored and nothing is rejected or restored just in time.
func TestRestartJITOldStateFileLoads(t *testing.T) {
	testkit.CheckLeaks(t)
	r := newRestartJITRig(t)
	key, statePath := r.key, r.statePath
	static := r.client(t, "198.18.9.5", false)
	now := time.Now()
	old := restartStateJSON(key, now, restartStatePeerJSON(static.Key, fmt.Sprintf("127.0.0.1:%d", static.Port), now))
	if err := os.MkdirAll(filepath.Dir(statePath), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(statePath, []byte(old), 0o600); err != nil {
		t.Fatal(err)
	}
	s := startRestartServer(t, key, restartJITGatewayAddr, r.port, testkit.PeerConf(&static.Node, false), r.config(), restartDaemonFlow)
	testkit.Eventually(t, 10*time.Second, "the broadcast to the restored endpoint to reach the static client", func() bool {
		return static.transportRx() > 0
	})
	log := s.log.String()
	if !strings.Contains(log, "restored 1 learned endpoints") {
		t.Errorf("the old file's endpoint was not restored; log:\n%s", log)
	}
	if strings.Contains(log, "just-in-time peers from the state file") {
		t.Errorf("an old file restored just-in-time peers; log:\n%s", log)
	}
	if _, err := os.Stat(statePath + ".rejected"); err == nil {
		t.Error("the old state file was rejected")
	}
	if n := r.p.totalCalls(); n != 0 {
		t.Errorf("the provider was asked %d times, want 0", n)
	}
}

// A state file written by the previous version (its just-in-time peers'
// entries flagged "jit": true, no sections) restores those peers on the
// new one, as a "jit" section would.
func TestRestartJITVersion1FlagsRestore(t *testing.T) {
	testkit.CheckLeaks(t)
	r := newRestartJITRig(t)
	client := r.firstProcess(t)
	f := restartJITReadState(t, r.statePath)
	peers, _ := f["peers"].([]any)
	flagged := 0
	for _, e := range peers {
		if m, ok := e.(map[string]any); ok && m["public_key"] == restartJITKey(client.Key) {
			m["jit"] = true
			flagged++
		}
	}
	if flagged != 1 {
		t.Fatalf("the state file lists the client %d times in peers, want once: %v", flagged, f)
	}
	delete(f, "sections")
	restartJITWriteState(t, r.statePath, f)

	s2 := r.gateway(t)
	summary := "restored 1 just-in-time peers from the state file, 0 no longer known, 0 lookups failed"
	testkit.Eventually(t, 15*time.Second, "the restore summary", func() bool { return strings.Contains(s2.log.String(), summary) })
	if !s2.ours.HasPeer(client.Key.Pub) {
		t.Error("the client of the version 1 file is not a peer of the new gateway")
	}
	s2.close()
	if saved := restartJITSavedKeys(t, r.statePath); !strings.Contains(saved, restartJITKey(client.Key)) {
		t.Errorf("the rewritten state file does not list the restored client in its jit section: %q", saved)
	}
}
