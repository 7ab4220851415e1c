package main

import (
	"strings"
	"testing"
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
