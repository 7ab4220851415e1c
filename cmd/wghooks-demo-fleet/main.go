// Command wghooks-demo-fleet shows a fleet of gateways on one PostgreSQL
// peer store (`make demo-fleet`): it starts a real PostgreSQL server of
// its own (initdb into a temporary directory, a private unix socket, as
// the postgres user when run as root), three in-process gateways sharing
// one key, and prints a timeline: a key added to the store is served by
// each gateway its client reaches, then removed and cut on all three.
// `make demo` stays on SQLite and needs neither root nor PostgreSQL.
package main

import (
	"context"
	"encoding/hex"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"time"

	wgdevice "golang.zx2c4.com/wireguard/device"

	"github.com/wghooks/wghooks/device"
	"github.com/wghooks/wghooks/hooks"
	"github.com/wghooks/wghooks/hooks/pgstore"
	"github.com/wghooks/wghooks/internal/pgtest"
	"github.com/wghooks/wghooks/internal/testkit"
)

func main() {
	fmt.Println("\n== A fleet of three gateways on one PostgreSQL store: a key added once, served everywhere, removed once, cut everywhere")
	tl := &timeline{start: time.Now()}
	if err := run(tl); err != nil {
		tl.say("FAILED: %v", err)
		os.Exit(1)
	}
	fmt.Println("\nfleet demo done")
}

type timeline struct{ start time.Time }

func (t *timeline) say(format string, args ...any) {
	fmt.Printf("  %7.3fs  %s\n", time.Since(t.start).Seconds(), fmt.Sprintf(format, args...))
}

type gateway struct {
	name  string
	node  *testkit.Node
	dev   *device.Device
	store *pgstore.Store
}

func (g *gateway) holds(k [32]byte) bool {
	get, err := g.dev.IpcGet()
	return err == nil && strings.Contains(get, "public_key="+hex.EncodeToString(k[:])+"\n")
}

func run(tl *timeline) error {
	srv, err := pgtest.Start()
	if err != nil {
		return fmt.Errorf("failed to start PostgreSQL (install Debian's postgresql): %w", err)
	}
	defer srv.Close()
	url := srv.URL("postgres")
	tl.say("PostgreSQL started: initdb in a temporary directory, socket in %s", srv.SocketDir())
	ctx := context.Background()
	applied, err := pgstore.Migrate(ctx, url)
	if err != nil {
		return err
	}
	tl.say("schema created (what `wghooks peers -db URL migrate` does): versions %v", applied)

	gwKey := testkit.NewKeypair()
	var gws []*gateway
	defer func() {
		for _, g := range gws {
			g.dev.Close()
			g.store.Close()
		}
	}()
	for i := 1; i <= 3; i++ {
		g := &gateway{name: fmt.Sprintf("gateway %d", i)}
		if g.store, err = pgstore.Open(ctx, pgstore.Config{URL: url}); err != nil {
			return err
		}
		g.node, g.dev, err = testkit.StartWghooks("198.18.0.1", gwKey, 0, device.Config{
			JIT: device.JITConfig{Provider: g.store, RevalidateInterval: time.Hour},
			HA:  device.HAConfig{FlowEscapeOff: true},
		})
		if err != nil {
			g.store.Close()
			return err
		}
		gws = append(gws, g)
		stop, err := g.node.ServeEcho()
		if err != nil {
			return err
		}
		defer stop()
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if gws[0].store.Watching() && gws[1].store.Watching() && gws[2].store.Watching() {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the gateways never started watching the store")
		}
	}
	tl.say("3 gateways up, one key, ports %d, %d, %d; each its own pool and LISTEN connection; no peers configured",
		gws[0].node.Port, gws[1].node.Port, gws[2].node.Port)

	laptop := testkit.NewKeypair()
	addr := netip.MustParseAddr("198.18.1.2")
	if err := gws[0].store.Put(ctx, pgstore.Peer{PeerConfig: hooks.PeerConfig{
		PublicKey: laptop.Pub, AllowedIPs: []netip.Prefix{netip.PrefixFrom(addr, 32)}}, Comment: "laptop"}); err != nil {
		return err
	}
	tl.say("laptop's key added once to the store (what `wghooks peers add` does)")

	// The laptop reaches each gateway in turn (DNS round robin, a move):
	// each installs it on its first initiation.
	var clients []*wgdevice.Device
	defer func() {
		for _, c := range clients {
			c.Close()
		}
	}()
	var nodes []*testkit.Node
	for _, g := range gws {
		b := testkit.NewCountingBind(nil)
		n, d, err := testkit.StartUpstream(addr.String(), laptop, 0, b, wgdevice.NewLogger(wgdevice.LogLevelSilent, ""))
		if err != nil {
			return err
		}
		clients = append(clients, d)
		nodes = append(nodes, n)
		if err := d.IpcSet(testkit.PeerConf(g.node, true)); err != nil {
			return err
		}
		t0 := time.Now()
		if err := n.Echo(g.node.Addr, 10*time.Second); err != nil {
			return fmt.Errorf("laptop through %s: %w", g.name, err)
		}
		tl.say("laptop reaches %s: answered in %v, %d initiation sent", g.name, time.Since(t0).Round(time.Millisecond), b.InitSent.Load())
	}

	t0 := time.Now()
	if _, err := gws[0].store.Delete(ctx, laptop.Pub); err != nil {
		return err
	}
	tl.say("laptop's key removed once from the store (what `wghooks peers remove` does)")
	cut := make([]time.Duration, len(gws))
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		left := 0
		for i, g := range gws {
			if cut[i] == 0 {
				if g.holds(laptop.Pub) {
					left++
				} else {
					cut[i] = time.Since(t0)
				}
			}
		}
		if left == 0 {
			break
		}
	}
	for i, g := range gws {
		if cut[i] == 0 {
			return fmt.Errorf("%s still holds the removed key", g.name)
		}
		tl.say("%s cut the laptop %v after the removal (pushed by the database: trigger, NOTIFY)", g.name, cut[i].Round(time.Millisecond))
	}
	for i, g := range gws {
		if nodes[i].Echo(g.node.Addr, time.Second) == nil {
			return fmt.Errorf("%s still answers the removed laptop", g.name)
		}
	}
	tl.say("the laptop's next packets go unanswered on every gateway")
	return nil
}
