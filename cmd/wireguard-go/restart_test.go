package main

import (
	"strings"
	"testing"
	"time"

	"github.com/wghooks/wghooks/device"
)

func TestParseRestartOptions(t *testing.T) {
	const (
		envBroadcast       = "WGHOOKS_BROADCAST"
		envStateFile       = "WGHOOKS_STATE_FILE"
		envStateInterval   = "WGHOOKS_STATE_INTERVAL"
		envStateMaxAge     = "WGHOOKS_STATE_MAX_AGE"
		envStaleWake       = "WGHOOKS_STALE_WAKE"
		envDeadPeerTimeout = "WGHOOKS_DEAD_PEER_TIMEOUT"
	)
	d, _, err := testSettings(t, "wg7", nil)
	if err != nil {
		t.Fatal(err)
	}
	want := device.RestartConfig{Broadcast: device.BroadcastAtFirstPeers, StateFile: "/var/lib/wghooks/wg7.json"}
	if d.cfg.Restart != want {
		t.Fatalf("defaults: %+v, want %+v", d.cfg.Restart, want)
	}

	d, _, err = testSettings(t, "wg7", map[string]string{
		envBroadcast: "off", envStateFile: "off", envStateInterval: "off", envStateMaxAge: "1h",
		envStaleWake: "off", envDeadPeerTimeout: "3s",
	})
	want = device.RestartConfig{Broadcast: device.BroadcastOff, StateInterval: -1, StateMaxAge: time.Hour, NoStaleWake: true, DeadPeerTimeout: 3 * time.Second}
	if err != nil || d.cfg.Restart != want {
		t.Fatalf("settings: err %v, %+v, want %+v", err, d.cfg.Restart, want)
	}

	d, _, err = testSettings(t, "wg7", map[string]string{envStateFile: "/tmp/x.json", envStateInterval: "5s"})
	if err != nil || d.cfg.Restart.StateFile != "/tmp/x.json" || d.cfg.Restart.StateInterval != 5*time.Second {
		t.Fatalf("state file settings: err %v, %+v", err, d.cfg.Restart)
	}

	// Every spelling accepted before the settings table still is.
	for v, off := range map[string]bool{"on": false, "true": false, "1": false, "off": true, "false": true, "0": true} {
		d, _, err := testSettings(t, "wg7", map[string]string{envBroadcast: v, envStaleWake: v})
		if err != nil || (d.cfg.Restart.Broadcast == device.BroadcastOff) != off || d.cfg.Restart.NoStaleWake != off {
			t.Errorf("%q: err %v, %+v", v, err, d.cfg.Restart)
		}
	}
	for _, v := range []string{"0", "off"} {
		d, _, err := testSettings(t, "wg7", map[string]string{envStateInterval: v, envDeadPeerTimeout: v})
		if err != nil || d.cfg.Restart.StateInterval != -1 || d.cfg.Restart.DeadPeerTimeout != 0 {
			t.Errorf("%q: err %v, %+v", v, err, d.cfg.Restart)
		}
	}

	for k, v := range map[string]string{
		envBroadcast:       "sometimes",
		envStateInterval:   "-5s",
		envStateMaxAge:     "off",
		envStaleWake:       "maybe",
		envDeadPeerTimeout: "soon",
	} {
		_, _, err := testSettings(t, "wg7", map[string]string{k: v})
		if err == nil || !strings.Contains(err.Error(), k) || !strings.Contains(err.Error(), v) {
			t.Errorf("%s=%q: error %v, want one naming the variable and the value", k, v, err)
		}
	}
}
