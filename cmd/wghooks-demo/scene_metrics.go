package main

import (
	"bufio"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/wghooks/wghooks/device"
	"github.com/wghooks/wghooks/internal/testkit"
	"github.com/wghooks/wghooks/ops"
)

// metricsSeries are the per-peer families, named as
// prometheus_wireguard_exporter names them.
var metricsSeries = []string{"wireguard_sent_bytes_total", "wireguard_received_bytes_total", "wireguard_latest_handshake_seconds"}

// sceneMetrics: a gateway serves /metrics on loopback; two clients send
// it some traffic; one scrape shows a series per peer for each family.
func sceneMetrics(tl *timeline) error {
	gw, err := startNode("gateway", "198.18.70.1", testkit.Keypair{}, 0, device.Config{})
	if err != nil {
		return err
	}
	defer gw.dev.Close()
	o, err := ops.Start(gw.dev, "127.0.0.1:0", ops.Config{Interface: "wg0", NoProcessMetrics: true})
	if err != nil {
		return err
	}
	defer o.Close()
	stop, err := gw.ServeHTTP("hello from the gateway")
	if err != nil {
		return err
	}
	defer stop()
	tl.say("gateway on udp 127.0.0.1:%d serves %s/metrics", gw.Port, o.URL())

	var peers []*node
	for i, name := range []string{"alice", "bob"} {
		c, err := startNode(name, fmt.Sprintf("198.18.70.%d", i+2), testkit.Keypair{}, 0, device.Config{})
		if err != nil {
			return err
		}
		defer c.dev.Close()
		if err := gw.addPeer(c.Node, false); err != nil {
			return err
		}
		if err := c.addPeer(gw.Node, true); err != nil {
			return err
		}
		peers = append(peers, c)
	}
	for _, c := range peers {
		// Different amounts, so the counters differ: alice fetches
		// three times, bob once.
		times := 1
		if c.name == "alice" {
			times = 3
		}
		for range times {
			if _, err := c.Get(gw.Addr, 10*time.Second); err != nil {
				return fmt.Errorf("%s's request: %w", c.name, err)
			}
		}
	}
	tl.say("alice (%s) fetched a page three times through the tunnel, bob (%s) once", shortKey(peers[0].Key), shortKey(peers[1].Key))

	lines, err := scrape(o.URL() + "/metrics")
	if err != nil {
		return err
	}
	tl.say("one scrape of /metrics (public keys shortened here; no private or preshared key is ever exported):")
	present := 0
	for _, family := range metricsSeries {
		n := 0
		for _, l := range lines {
			if strings.HasPrefix(l, family+"{") {
				n++
				short, who := shortenKeys(l, peers)
				fmt.Printf("             %s%s   ← %s\n", short, metricsAgo(family, l), who)
			}
		}
		if n == len(peers) {
			present++
		}
	}
	for _, l := range lines {
		if strings.HasPrefix(l, "wireguard_peers_total{") {
			fmt.Printf("             %s\n", l)
		}
	}
	tl.say("the names, labels and types of prometheus_wireguard_exporter: its dashboards and alerts work unchanged")
	tl.record("peers", len(peers))
	tl.record("families with a series per peer", present)
	if present != len(metricsSeries) {
		return fmt.Errorf("%d of the %d per-peer families have a series for each of the %d peers", present, len(metricsSeries), len(peers))
	}
	return nil
}

// scrape fetches url and returns its lines that are not comments.
func scrape(url string) ([]string, error) {
	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Get(url)
	if err != nil {
		return nil, fmt.Errorf("failed to scrape %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		io.Copy(io.Discard, resp.Body)
		return nil, fmt.Errorf("failed to scrape %s: %s", url, resp.Status)
	}
	var lines []string
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		if l := sc.Text(); l != "" && !strings.HasPrefix(l, "#") {
			lines = append(lines, l)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("failed to read the scrape of %s: %w", url, err)
	}
	return lines, nil
}

// metricsAgo says how long ago a latest_handshake_seconds value (Unix
// seconds) was.
func metricsAgo(family, line string) string {
	if family != "wireguard_latest_handshake_seconds" {
		return ""
	}
	var sec int64
	if _, err := fmt.Sscan(line[strings.LastIndexByte(line, ' ')+1:], &sec); err != nil || sec == 0 {
		return ""
	}
	return fmt.Sprintf(" (%s ago)", time.Since(time.Unix(sec, 0)).Round(time.Second))
}

// pubBase64 is a public key as wg prints it.
func pubBase64(k testkit.Keypair) string { return base64.StdEncoding.EncodeToString(k.Pub[:]) }

// shortKey is a public key's first characters, as wg prints it.
func shortKey(k testkit.Keypair) string { return pubBase64(k)[:8] + "…" }

// shortenKeys replaces a peer's full public key in a series line with its
// short form, and names the peer.
func shortenKeys(line string, peers []*node) (short, name string) {
	for _, p := range peers {
		if full := pubBase64(p.Key); strings.Contains(line, full) {
			return strings.ReplaceAll(line, full, shortKey(p.Key)), p.name
		}
	}
	return line, "?"
}
