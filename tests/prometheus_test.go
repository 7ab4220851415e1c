package tests

// A real Prometheus (Debian's prometheus package) scraping a wghooks
// device's operations endpoint, to show that the dashboard and the alert
// rules shipped in deploy/ work against what wghooks serves.

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wghooks/wghooks/device"
	"github.com/wghooks/wghooks/hooks"
	"github.com/wghooks/wghooks/internal/testkit"
	"github.com/wghooks/wghooks/ops"
)

const (
	promRulesFile = "../deploy/prometheus/wghooks-rules.yml"
	promDashboard = "../deploy/grafana/wghooks.json"
)

// promRequire returns the paths of prometheus and promtool; it skips
// without them, saying why, but fails when CI=true (CI installs them).
func promRequire(t *testing.T) (prom, promtool string) {
	t.Helper()
	var missing []string
	paths := map[string]string{}
	for _, name := range []string{"prometheus", "promtool"} {
		p, err := exec.LookPath(name)
		if err != nil {
			missing = append(missing, name)
		}
		paths[name] = p
	}
	if len(missing) > 0 {
		msg := fmt.Sprintf("needs %s (apt-get install --no-install-recommends prometheus)", strings.Join(missing, " and "))
		if ci, _ := strconv.ParseBool(os.Getenv("CI")); ci {
			t.Fatal(msg)
		}
		t.Skip("skipping: " + msg)
	}
	return paths["prometheus"], paths["promtool"]
}

// promClient keeps no idle connection, so no goroutine outlives a test.
var promClient = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 10 * time.Second}

// promServer is a Prometheus server a test started on loopback, with its
// own configuration and data directory; it is stopped at Cleanup.
type promServer struct {
	url string
}

// startPrometheus starts prometheus with the configuration text conf (in
// Prometheus' YAML) and waits until it is ready.
func startPrometheus(t *testing.T, bin, conf string) *promServer {
	t.Helper()
	dir := t.TempDir()
	confPath := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(confPath, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	logPath := filepath.Join(dir, "prometheus.log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin,
		"--config.file="+confPath,
		"--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr,
		"--log.level=warn")
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = promSysProcAttr()
	if err := cmd.Start(); err != nil {
		logf.Close()
		t.Fatalf("failed to start prometheus: %v", err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); logf.Close(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(15 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			t.Logf("prometheus log:\n%s", tail(string(b), 4000))
		}
	})
	s := &promServer{url: "http://" + addr}
	testkit.EventuallyNil(t, 60*time.Second, "prometheus ready", func() error {
		select {
		case <-exited:
			b, _ := os.ReadFile(logPath)
			t.Fatalf("prometheus exited:\n%s", tail(string(b), 4000))
		default:
		}
		resp, err := promClient.Get(s.url + "/-/ready")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return fmt.Errorf("/-/ready = %d", resp.StatusCode)
		}
		return nil
	})
	return s
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

// api GETs path (with query parameters) from Prometheus' HTTP API and
// decodes its data into out.
func (s *promServer) api(path string, params url.Values, out any) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", s.url+path+"?"+params.Encode(), nil)
	if err != nil {
		return err
	}
	resp, err := promClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return err
	}
	var env struct {
		Status string          `json:"status"`
		Error  string          `json:"error"`
		Data   json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(b, &env); err != nil {
		return fmt.Errorf("%s: %d %.200s", path, resp.StatusCode, b)
	}
	if env.Status != "success" {
		return fmt.Errorf("%s: %s", path, env.Error)
	}
	return json.Unmarshal(env.Data, out)
}

// promSample is one element of an instant vector.
type promSample struct {
	Metric map[string]string `json:"metric"`
	Value  [2]any            `json:"value"`
}

// query runs an instant query and returns its samples (a scalar is one
// sample without labels).
func (s *promServer) query(q string) ([]promSample, error) {
	var data struct {
		ResultType string          `json:"resultType"`
		Result     json.RawMessage `json:"result"`
	}
	if err := s.api("/api/v1/query", url.Values{"query": {q}}, &data); err != nil {
		return nil, err
	}
	if data.ResultType == "scalar" {
		var v [2]any
		err := json.Unmarshal(data.Result, &v)
		return []promSample{{Value: v}}, err
	}
	var out []promSample
	err := json.Unmarshal(data.Result, &out)
	return out, err
}

// activeAlerts returns the names of the alerts pending or firing.
func (s *promServer) activeAlerts() (map[string]bool, error) {
	var data struct {
		Alerts []struct {
			Labels map[string]string `json:"labels"`
			State  string            `json:"state"`
		} `json:"alerts"`
	}
	if err := s.api("/api/v1/alerts", nil, &data); err != nil {
		return nil, err
	}
	out := map[string]bool{}
	for _, a := range data.Alerts {
		if a.State == "pending" || a.State == "firing" {
			out[a.Labels["alertname"]] = true
		}
	}
	return out, nil
}

// dashboardQueries returns every target's expression in the Grafana
// dashboard, its variables given the values that select everything.
func dashboardQueries(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile(promDashboard)
	if err != nil {
		t.Fatal(err)
	}
	type panel struct {
		Title   string `json:"title"`
		Targets []struct {
			Expr string `json:"expr"`
		} `json:"targets"`
		Panels []json.RawMessage `json:"panels"`
	}
	var dash struct {
		Panels []panel `json:"panels"`
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatalf("failed to parse %s: %v", promDashboard, err)
	}
	vars := strings.NewReplacer("$instance", ".*", "$interface", ".*", "$__rate_interval", "5m")
	var out []string
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			if tg.Expr == "" {
				t.Errorf("panel %q has a target without an expression", p.Title)
				continue
			}
			out = append(out, vars.Replace(tg.Expr))
		}
	}
	if len(out) == 0 {
		t.Fatal("the dashboard has no queries")
	}
	return out
}

// promRules is what /api/v1/rules says of the rules Prometheus loaded.
type promRules struct {
	Groups []struct {
		Rules []struct {
			Name      string `json:"name"`
			Query     string `json:"query"`
			Health    string `json:"health"`
			LastError string `json:"lastError"`
		} `json:"rules"`
	} `json:"groups"`
}

// ruleQueries returns each alert rule's query as Prometheus loaded it:
// its expression without the final comparison with a threshold (every
// rule is written so).
func ruleQueries(t *testing.T, rules promRules) map[string]string {
	t.Helper()
	threshold := regexp.MustCompile(`\s*(==|!=|>=|<=|>|<)\s*[0-9.e+-]+\s*$`)
	out := map[string]string{}
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			q := threshold.ReplaceAllString(r.Query, "")
			if q == r.Query {
				t.Errorf("rule %s: expression %q does not end in a comparison with a threshold", r.Name, r.Query)
			}
			out[r.Name] = q
		}
	}
	if len(out) == 0 {
		t.Fatal("prometheus loaded no alert rules")
	}
	return out
}

// TestPrometheusDashboardAndRules: a real Prometheus scrapes a wghooks
// device's /metrics (with a bearer token, from a credentials file) every
// second while a just-in-time client's traffic flows, a provider lookup
// fails and a handshake flood engages the guard; then every query of the
// shipped Grafana dashboard, and every alert rule's query, returns data
// through Prometheus' HTTP API; the rules load healthy, `promtool check
// rules` passes, and the alerts for the provider, the guard, draining and
// readiness become active when their condition holds.
func TestPrometheusDashboardAndRules(t *testing.T) {
	testkit.CheckLeaks(t)
	prom, promtool := promRequire(t)
	rulesPath, err := filepath.Abs(promRulesFile)
	if err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(promtool, "check", "rules", rulesPath).CombinedOutput(); err != nil {
		t.Fatalf("promtool check rules %s: %v\n%s", promRulesFile, err, out)
	}

	// The device: a gateway with just-in-time peers, a provider that
	// fails for one key, and a flood guard that engages easily.
	p := newJITProvider()
	failing := testkit.NewKeypair()
	p.answer = func(_ context.Context, key hooks.PublicKey) (hooks.PeerConfig, error) {
		if key == failing.Pub {
			return hooks.PeerConfig{}, errors.New("peer store unavailable")
		}
		p.mu.Lock()
		defer p.mu.Unlock()
		if cfg, ok := p.peers[key]; ok {
			return cfg, nil
		}
		return hooks.PeerConfig{}, hooks.ErrUnknownPeer
	}
	server, sd := newJITServerWith(t, p, device.Config{Guard: device.GuardConfig{Rate: 2}}, nil, nil)
	const iface, token = "wgprom0", "prom-test-token-5d1e"
	ep, err := ops.Start(sd, "127.0.0.1:0", ops.Config{Interface: iface, Token: token, Errorf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ep.Close() })

	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ps := startPrometheus(t, prom, fmt.Sprintf(`global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
rule_files:
  - %q
scrape_configs:
  - job_name: wghooks
    authorization:
      credentials_file: %q
    static_configs:
      - targets: [%q]
`, rulesPath, tokenFile, ep.Addr().String()))

	// Traffic only after the first scrape, so every rate has an increase.
	testkit.EventuallyNil(t, 60*time.Second, "prometheus scraping wghooks", func() error {
		r, err := ps.query(`up{job="wghooks"} == 1`)
		if err == nil && len(r) == 0 {
			err = errors.New("target not up (is the token accepted?)")
		}
		return err
	})
	client := newJITClient(t, "198.18.1.1", server)
	p.set(client.Key.Pub, client.Addr)
	for i := range 5 {
		if err := client.Echo(server.Addr, 10*time.Second); err != nil {
			t.Fatalf("echo %d through a just-in-time peer: %v", i, err)
		}
		time.Sleep(300 * time.Millisecond)
	}

	// A failed lookup, then a flood of initiations from one new source
	// until Prometheus has seen the guard engaged (bounded).
	s := newJITSender(t, server)
	s.send(t, s.initiation(t, failing))
	testkit.Eventually(t, 10*time.Second, "a provider error", func() bool { return sd.Stats().ProviderErrors > 0 })
	stranger := testkit.NewKeypair()
	testkit.EventuallyNil(t, 60*time.Second, "prometheus seeing the guard engaged", func() error {
		for range 10 {
			s.send(t, s.initiation(t, stranger))
		}
		r, err := ps.query(`wghooks_flooded == 1`)
		if err == nil && len(r) == 0 {
			err = errors.New("not yet")
		}
		return err
	})

	// Every dashboard query and every rule's query returns data.
	var loaded promRules
	if err := ps.api("/api/v1/rules", nil, &loaded); err != nil {
		t.Fatal(err)
	}
	queries := dashboardQueries(t)
	rules := ruleQueries(t, loaded)
	for _, q := range rules {
		queries = append(queries, q)
	}
	slices.Sort(queries)
	queries = slices.Compact(queries)
	var empty []string
	ok := testkit.Poll(60*time.Second, func() bool {
		empty = empty[:0]
		for _, q := range queries {
			if r, err := ps.query(q); err != nil || len(r) == 0 {
				empty = append(empty, fmt.Sprintf("%s (%v)", q, err))
			}
		}
		return len(empty) == 0
	})
	if !ok {
		t.Fatalf("%d of %d queries return no data through Prometheus:\n  %s", len(empty), len(queries), strings.Join(empty, "\n  "))
	}
	t.Logf("all %d queries (%d of them the alert rules') return data", len(queries), len(rules))

	// The per-peer series name the client as wg shows it.
	pk := base64.StdEncoding.EncodeToString(client.Key.Pub[:])
	r, err := ps.query(fmt.Sprintf(`wireguard_latest_handshake_seconds{interface=%q,public_key=%q,allowed_ips="198.18.1.1/32"} > 0`, iface, pk))
	if err != nil || len(r) != 1 {
		t.Fatalf("the client's handshake series through Prometheus: %v, %v", r, err)
	}

	// The rules evaluate without error, and the alerts whose condition
	// holds are active (pending: their "for" has not passed).
	if err := ps.api("/api/v1/rules", nil, &loaded); err != nil {
		t.Fatal(err)
	}
	for _, g := range loaded.Groups {
		for _, r := range g.Rules {
			if r.Health != "ok" {
				t.Errorf("rule %s: health %q %s", r.Name, r.Health, r.LastError)
			}
		}
	}
	waitAlerts := func(names ...string) {
		t.Helper()
		testkit.EventuallyNil(t, 30*time.Second, "alerts "+strings.Join(names, ", "), func() error {
			active, err := ps.activeAlerts()
			if err != nil {
				return err
			}
			for _, n := range names {
				if !active[n] {
					return fmt.Errorf("%s not active (active: %v)", n, active)
				}
			}
			return nil
		})
	}
	waitAlerts("WghooksProviderErrors", "WghooksHandshakeGuardEngaged")
	if err := sd.DrainPeers(); err != nil {
		t.Fatal(err)
	}
	waitAlerts("WghooksDraining", "WghooksNotReady")
}
