package main

import (
	"strings"
	"testing"
	"time"

	"wghooks/device"
)

func TestParseRestartOptions(t *testing.T) {
	env := func(kv map[string]string) func(string) string {
		return func(k string) string { return kv[k] }
	}
	cfg := device.Config{Name: "wg7"}
	if err := parseRestartOptions(&cfg, env(nil)); err != nil {
		t.Fatal(err)
	}
	want := device.RestartConfig{Broadcast: device.BroadcastAtFirstPeers, StateFile: "/var/lib/wghooks/wg7.json"}
	if cfg.Restart != want {
		t.Fatalf("defaults: %+v, want %+v", cfg.Restart, want)
	}

	cfg = device.Config{Name: "wg7"}
	err := parseRestartOptions(&cfg, env(map[string]string{
		envBroadcast: "off", envStateFile: "off", envStateInterval: "off", envStateMaxAge: "1h",
		envStaleWake: "off", envDeadPeerTimeout: "3s",
	}))
	want = device.RestartConfig{Broadcast: device.BroadcastOff, StateInterval: -1, StateMaxAge: time.Hour, NoStaleWake: true, DeadPeerTimeout: 3 * time.Second}
	if err != nil || cfg.Restart != want {
		t.Fatalf("settings: err %v, %+v, want %+v", err, cfg.Restart, want)
	}

	cfg = device.Config{Name: "wg7"}
	if err := parseRestartOptions(&cfg, env(map[string]string{envStateFile: "/tmp/x.json", envStateInterval: "5s"})); err != nil ||
		cfg.Restart.StateFile != "/tmp/x.json" || cfg.Restart.StateInterval != 5*time.Second {
		t.Fatalf("state file settings: err %v, %+v", err, cfg.Restart)
	}

	for k, v := range map[string]string{
		envBroadcast:       "sometimes",
		envStateInterval:   "-5s",
		envStateMaxAge:     "off",
		envStaleWake:       "maybe",
		envDeadPeerTimeout: "soon",
	} {
		err := parseRestartOptions(&device.Config{Name: "wg7"}, env(map[string]string{k: v}))
		if err == nil || !strings.Contains(err.Error(), k) || !strings.Contains(err.Error(), v) {
			t.Errorf("%s=%q: error %v, want one naming the variable and the value", k, v, err)
		}
	}
}
