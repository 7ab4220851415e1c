package main

import (
	"strings"
	"testing"
)

func TestParseGuardOptions(t *testing.T) {
	const env = "WGHOOKS_GUARD_RATE"
	for v, want := range map[string]int{"": 0, "off": -1, "1000": 1000} {
		d, _, err := testSettings(t, "wg7", map[string]string{env: v})
		if err != nil || d.cfg.Guard.Rate != want {
			t.Errorf("%s=%q: rate %d, err %v; want %d", env, v, d.cfg.Guard.Rate, err, want)
		}
	}
	for _, v := range []string{"0", "-5", "fast"} {
		_, _, err := testSettings(t, "wg7", map[string]string{env: v})
		if err == nil || !strings.Contains(err.Error(), env) || !strings.Contains(err.Error(), v) {
			t.Errorf("%s=%q: error %v, want one naming the variable and the value", env, v, err)
		}
	}
}
