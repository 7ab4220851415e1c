package main

import (
	"strings"
	"testing"

	"wghooks/device"
)

func TestParseGuardOptions(t *testing.T) {
	for v, want := range map[string]int{"": 0, "off": -1, "1000": 1000} {
		var cfg device.Config
		err := parseGuardOptions(&cfg, func(k string) string {
			if k == envGuardRate {
				return v
			}
			return ""
		})
		if err != nil || cfg.Guard.Rate != want {
			t.Errorf("%s=%q: rate %d, err %v; want %d", envGuardRate, v, cfg.Guard.Rate, err, want)
		}
	}
	for _, v := range []string{"0", "-5", "fast"} {
		err := parseGuardOptions(&device.Config{}, func(string) string { return v })
		if err == nil || !strings.Contains(err.Error(), envGuardRate) || !strings.Contains(err.Error(), v) {
			t.Errorf("%s=%q: error %v, want one naming the variable and the value", envGuardRate, v, err)
		}
	}
}
