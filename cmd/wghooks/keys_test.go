package main

import (
	"slices"
	"strings"
	"testing"

	"github.com/wghooks/wghooks/device"
)

func TestKeysListsEveryFeaturesExtensionKeys(t *testing.T) {
	var out strings.Builder
	if err := runKeys("", nil, &out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"device drain:", "device wghooks_broadcast:", "peer wghooks_endpoint:", "peer wghooks_jit:", "wghooks_reset_source:", "wghooks_flow_escape:"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("keys output lacks %q:\n%s", want, out.String())
		}
	}
	if err := runKeys("", []string{"x"}, &out); err == nil {
		t.Error("keys with an argument: no error")
	}
}

// TestKeysGenerated: keys_gen.go, which the CLI lists so as not to link the
// engine, is device.ExtensionKeys(), and `wghooks keys` prints one per line.
func TestKeysGenerated(t *testing.T) {
	want := device.ExtensionKeys()
	if !slices.Equal(extensionKeys, want) {
		var missing, extra []string
		for _, k := range want {
			if !slices.Contains(extensionKeys, k) {
				missing = append(missing, k)
			}
		}
		for _, k := range extensionKeys {
			if !slices.Contains(want, k) {
				extra = append(extra, k)
			}
		}
		t.Fatalf("keys_gen.go differs from device.ExtensionKeys(); regenerate it with\n\tgo generate ./cmd/wghooks\nlacking: %q\nno longer in device: %q", missing, extra)
	}
	var out strings.Builder
	if err := runKeys("", nil, &out); err != nil {
		t.Fatal(err)
	}
	if got := out.String(); got != strings.Join(want, "\n")+"\n" {
		t.Errorf("keys output is not device.ExtensionKeys(), one a line:\n%s", got)
	}
}
