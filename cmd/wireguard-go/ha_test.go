package main

import (
	"strings"
	"testing"
	"time"

	"github.com/wghooks/wghooks/device"
)

func TestParseHAOptions(t *testing.T) {
	const (
		envHTTP                = "WGHOOKS_HTTP"
		envFlowEscape          = "WGHOOKS_FLOW_ESCAPE"
		envFlowEscapeSilence   = "WGHOOKS_FLOW_ESCAPE_SILENCE"
		envFlowEscapeHandshake = "WGHOOKS_FLOW_ESCAPE_HANDSHAKE_TIMEOUT"
	)
	d, _, err := testSettings(t, "wg7", nil)
	if err != nil || d.httpAddr != "" || d.cfg.HA != (device.HAConfig{}) {
		t.Fatalf("no settings: err %v, addr %q, HA %+v", err, d.httpAddr, d.cfg.HA)
	}
	d, _, err = testSettings(t, "wg7", map[string]string{
		envHTTP: "9586", envFlowEscape: "off", envFlowEscapeSilence: "500ms", envFlowEscapeHandshake: "2s",
	})
	if err != nil || d.httpAddr != "127.0.0.1:9586" || !d.cfg.HA.FlowEscapeOff ||
		d.cfg.HA.Silence != 500*time.Millisecond || d.cfg.HA.HandshakeTimeout != 2*time.Second {
		t.Fatalf("settings: err %v, addr %q, HA %+v", err, d.httpAddr, d.cfg.HA)
	}
	for k, v := range map[string]string{
		envHTTP:                "nope",
		envFlowEscape:          "sometimes",
		envFlowEscapeSilence:   "-1s",
		envFlowEscapeHandshake: "soon",
	} {
		_, _, err := testSettings(t, "wg7", map[string]string{k: v})
		if err == nil || !strings.Contains(err.Error(), k) || !strings.Contains(err.Error(), v) {
			t.Errorf("%s=%q: error %v, want one naming the variable and the value", k, v, err)
		}
	}
}
