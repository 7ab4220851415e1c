package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wghooks/wghooks/cmd/wireguard-go/internal/settings"
	"github.com/wghooks/wghooks/device"
)

func TestSettingsTable(t *testing.T) {
	if err := settingsTable.Check(); err != nil {
		t.Fatal(err)
	}
	// Builtin defaults are the device's own: the table says them, the
	// device applies them.
	vs, err := settingsTable.Read("wg7", []string{envConfigDir + "=" + t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if v := vs.Get("WGHOOKS_STATE_INTERVAL"); v.Dur != device.DefaultStateInterval {
		t.Errorf("WGHOOKS_STATE_INTERVAL default %v, device %v", v.Dur, device.DefaultStateInterval)
	}
	if v := vs.Get("WGHOOKS_STATE_MAX_AGE"); v.Dur != device.DefaultStateMaxAge {
		t.Errorf("WGHOOKS_STATE_MAX_AGE default %v, device %v", v.Dur, device.DefaultStateMaxAge)
	}
}

func TestSettingsBounds(t *testing.T) {
	for _, name := range []string{"WGHOOKS_STATE_INTERVAL", "WGHOOKS_JIT_LOOKUP_TIMEOUT", "WGHOOKS_FLOW_ESCAPE_SILENCE", "WGHOOKS_DEAD_PEER_TIMEOUT"} {
		_, _, err := testSettings(t, "wg7", map[string]string{name: "1ns"})
		if err == nil || !strings.Contains(err.Error(), "failed to read settings: failed to parse "+name+`="1ns": want a duration from`) {
			t.Errorf("%s=1ns: %v", name, err)
		}
	}
	for _, kv := range []string{"WGHOOKS_JIT_MAX_PEERS=0", "WGHOOKS_GUARD_RATE=1000001", "WGHOOKS_STATE_MAX_AGE=9000h"} {
		name, value, _ := strings.Cut(kv, "=")
		if _, _, err := testSettings(t, "wg7", map[string]string{name: value}); err == nil {
			t.Errorf("%s accepted", kv)
		}
	}
}

func TestSettingsUnknown(t *testing.T) {
	_, _, err := testSettings(t, "wg7", map[string]string{"WGHOOKS_STATE_INTERVL": "5s"})
	const want = "failed to read settings: WGHOOKS_STATE_INTERVL: unknown setting (did you mean WGHOOKS_STATE_INTERVAL?)"
	if err == nil || err.Error() != want {
		t.Errorf("unknown environment name: %v, want %q", err, want)
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "wg7.conf"), []byte("# wg7\nstate_intervl = 5s\n"), 0o600)
	_, _, err = testSettings(t, "wg7", map[string]string{envConfigDir: dir})
	if err == nil || !strings.Contains(err.Error(), `wg7.conf:2: "state_intervl": unknown setting (did you mean state_interval?)`) {
		t.Errorf("unknown file key: %v", err)
	}
	// The harnesses' own variables are not the daemon's.
	if _, _, err := testSettings(t, "wg7", map[string]string{"WGTEST_BENCH_HA": "1"}); err != nil {
		t.Error(err)
	}
}

func TestSettingsFile(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "wg7.conf"), []byte("state_interval = 10s\nguard_rate = off\nhttp = 9586\npeer_token = s3cret\n"), 0o600)
	d, vs, err := testSettings(t, "wg7", map[string]string{envConfigDir: dir, "WGHOOKS_STATE_INTERVAL": "5s"})
	if err != nil {
		t.Fatal(err)
	}
	// The environment wins over the file, the file over the default.
	if d.cfg.Restart.StateInterval.String() != "5s" || d.cfg.Guard.Rate != -1 || d.httpAddr != "127.0.0.1:9586" {
		t.Fatalf("restart %+v, guard %+v, http %q", d.cfg.Restart, d.cfg.Guard, d.httpAddr)
	}
	for name, want := range map[string]settings.Source{
		"WGHOOKS_STATE_INTERVAL": settings.FromEnv, "WGHOOKS_GUARD_RATE": settings.FromFile, "WGHOOKS_BROADCAST": settings.FromDefault,
	} {
		if v := vs.Get(name); v.Source != want {
			t.Errorf("%s from %v, want %v", name, v.Source, want)
		}
	}
}

func TestPrintSettings(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "wg7.conf"), []byte("guard_rate = 100\npeer_token = s3cret\n"), 0o600)
	var out, errOut bytes.Buffer
	environ := []string{envConfigDir + "=" + dir, "WGHOOKS_STATE_FILE=off", "PATH=/bin"}
	if code := printSettings(&out, &errOut, "wg7", environ); code != exitSetupSuccess {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 1+len(settingsTable.Settings) {
		t.Fatalf("%d lines for %d settings:\n%s", len(lines), len(settingsTable.Settings), out.String())
	}
	for _, want := range [][]string{
		{"WGHOOKS_STATE_FILE", "off", "environment"},
		{"WGHOOKS_GUARD_RATE", "100", "file", filepath.Join(dir, "wg7.conf") + ":1"},
		{"WGHOOKS_PEER_DB", "/var/lib/wghooks/wg7.db", "default"},
		{"WGHOOKS_PEER_TOKEN", "(hidden)", "file", filepath.Join(dir, "wg7.conf") + ":2"},
		{"WGHOOKS_CONFIG_DIR", dir, "environment"},
		{"WGHOOKS_PEER_URL", "-", "default"},
	} {
		found := false
		for _, l := range lines {
			if strings.Join(strings.Fields(l), " ") == strings.Join(want, " ") {
				found = true
			}
		}
		if !found {
			t.Errorf("no line %q in:\n%s", want, out.String())
		}
	}
	if strings.Contains(out.String(), "s3cret") {
		t.Errorf("the token is printed:\n%s", out.String())
	}

	out.Reset()
	environ = append(environ, "WGHOOKS_JIT_IDLE=1ns")
	if code := printSettings(&out, &errOut, "wg7", environ); code != exitSetupFailed || out.Len() != 0 ||
		!strings.Contains(errOut.String(), `WGHOOKS_JIT_IDLE="1ns"`) {
		t.Errorf("invalid settings: exit %d, out %q, err %q", code, out.String(), errOut.String())
	}
}
