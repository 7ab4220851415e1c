package main

import (
	"strings"
	"testing"
	"time"

	"wghooks/device"
)

func TestParseHAOptions(t *testing.T) {
	env := func(kv map[string]string) func(string) string {
		return func(k string) string { return kv[k] }
	}
	defer func() { haHTTPAddr = "" }()

	var cfg device.Config
	if err := parseHAOptions(&cfg, env(nil)); err != nil || haHTTPAddr != "" || cfg.HA != (device.HAConfig{}) {
		t.Fatalf("no settings: err %v, addr %q, HA %+v", err, haHTTPAddr, cfg.HA)
	}
	err := parseHAOptions(&cfg, env(map[string]string{
		envHTTP: "9586", envFlowEscape: "off", envFlowEscapeSilence: "500ms", envFlowEscapeHandshake: "2s",
	}))
	if err != nil || haHTTPAddr != "127.0.0.1:9586" || !cfg.HA.FlowEscapeOff ||
		cfg.HA.Silence != 500*time.Millisecond || cfg.HA.HandshakeTimeout != 2*time.Second {
		t.Fatalf("settings: err %v, addr %q, HA %+v", err, haHTTPAddr, cfg.HA)
	}
	for k, v := range map[string]string{
		envHTTP:                "nope",
		envFlowEscape:          "sometimes",
		envFlowEscapeSilence:   "-1s",
		envFlowEscapeHandshake: "soon",
	} {
		err := parseHAOptions(&device.Config{}, env(map[string]string{k: v}))
		if err == nil || !strings.Contains(err.Error(), k) || !strings.Contains(err.Error(), v) {
			t.Errorf("%s=%q: error %v, want one naming the variable and the value", k, v, err)
		}
	}
}
