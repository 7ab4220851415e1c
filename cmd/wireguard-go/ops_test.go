package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/wghooks/wghooks/ops"
)

func TestParseMetricsOptions(t *testing.T) {
	d, _, err := testSettings(t, "wg7", nil)
	if err != nil || d.metricsPeers != 0 || d.metricsTokenFile != "" {
		t.Fatalf("no settings: err %v, peers %d, token file %q", err, d.metricsPeers, d.metricsTokenFile)
	}
	// The table's default is ops' own (the setting is Builtin).
	for _, st := range settingsTable.Settings {
		if st.Name == "WGHOOKS_METRICS_PEERS" && st.Default != strconv.Itoa(ops.DefaultMaxPeers) {
			t.Errorf("WGHOOKS_METRICS_PEERS default %q, ops.DefaultMaxPeers %d", st.Default, ops.DefaultMaxPeers)
		}
	}
	for v, want := range map[string]int{"5": 5, "off": -1} {
		d, _, err := testSettings(t, "wg7", map[string]string{"WGHOOKS_METRICS_PEERS": v, "WGHOOKS_METRICS_TOKEN_FILE": "/etc/wghooks/t"})
		if err != nil || d.metricsPeers != want || d.metricsTokenFile != "/etc/wghooks/t" {
			t.Errorf("WGHOOKS_METRICS_PEERS=%s: err %v, peers %d, token file %q", v, err, d.metricsPeers, d.metricsTokenFile)
		}
	}
	for _, v := range []string{"0", "-3", "many"} {
		if _, _, err := testSettings(t, "wg7", map[string]string{"WGHOOKS_METRICS_PEERS": v}); err == nil || !strings.Contains(err.Error(), "WGHOOKS_METRICS_PEERS") {
			t.Errorf("WGHOOKS_METRICS_PEERS=%q: error %v, want one naming the variable", v, err)
		}
	}
}

// TestMetricsTokenFile: the endpoint's configuration takes the token of
// a readable, non-empty file; otherwise the start fails with an error
// naming the setting and the file, never the content.
func TestMetricsTokenFile(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty")
	os.WriteFile(empty, []byte("\n"), 0o600)
	for path, want := range map[string]string{empty: "empty", filepath.Join(dir, "missing"): "no such file"} {
		d := &daemon{httpAddr: "127.0.0.1:0", metricsTokenFile: path}
		_, err := d.opsConfig("wg7", nil)
		if err == nil {
			t.Fatalf("accepted token file %s", path)
		}
		if msg := err.Error(); !strings.Contains(msg, "WGHOOKS_METRICS_TOKEN_FILE") || !strings.Contains(msg, path) || !strings.Contains(msg, want) {
			t.Errorf("error %q, want one naming the setting, the file and %q", msg, want)
		}
	}
	const token = "tok-9f2c"
	good := filepath.Join(dir, "token")
	os.WriteFile(good, []byte(token+"\n"), 0o600)
	d := &daemon{httpAddr: "127.0.0.1:0", metricsTokenFile: good, metricsPeers: 7}
	cfg, err := d.opsConfig("wg7", nil)
	if err != nil || cfg.Token != token || cfg.MaxPeers != 7 || cfg.Interface != "wg7" {
		t.Fatalf("opsConfig = %+v, %v", cfg, err)
	}
}

// TestMetricsTokenFileFailsStart: the daemon does not start with an
// unusable token file.
func TestMetricsTokenFileFailsStart(t *testing.T) {
	t.Setenv("WGHOOKS_METRICS_TOKEN_FILE", filepath.Join(t.TempDir(), "missing"))
	startFails(t, "wgtd6tok", "127.0.0.1:0")
}
