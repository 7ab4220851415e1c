package main

import (
	"errors"
	"os"
	"strings"
	"testing"
	"time"
)

// TestAwaitChild: the parent reads what the child's startReport sends, or
// its silence (died, or still starting).
func TestAwaitChild(t *testing.T) {
	for _, tc := range []struct {
		name    string
		child   func(r *startReport)
		wantErr string // "" is ready
	}{
		{"ready", func(r *startReport) { r.ready(); r.failed("late") }, ""},
		{"failed", func(r *startReport) { r.failed("Failed to create TUN device: boom") }, "daemon failed to start: Failed to create TUN device: boom"},
		{"died", func(r *startReport) { r.f.Close(); r.f = nil }, "daemon exited before it was ready"},
		{"slow", func(r *startReport) {}, errNotReady.Error()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pr, pw, err := os.Pipe()
			if err != nil {
				t.Fatal(err)
			}
			defer pr.Close()
			rep := &startReport{f: pw}
			defer rep.send("")
			tc.child(rep)
			err = awaitChild(pr, 50*time.Millisecond)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("awaitChild = %v, want ready", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("awaitChild = %v, want %q", err, tc.wantErr)
			}
			if tc.name == "slow" && !errors.Is(err, errNotReady) {
				t.Fatalf("awaitChild = %v, want errNotReady", err)
			}
		})
	}
}

// TestTakeStartReport: the variable is consumed, so the settings, which
// reject unknown WGHOOKS_ names, never see it.
func TestTakeStartReport(t *testing.T) {
	t.Setenv(envReadyFD, "not-a-number")
	if r := takeStartReport(); r.f != nil {
		t.Fatalf("takeStartReport adopted fd from %q", "not-a-number")
	}
	if _, ok := os.LookupEnv(envReadyFD); ok {
		t.Fatalf("%s still set after takeStartReport", envReadyFD)
	}
	if _, _, err := readSettings("wgtest0", os.Environ()); err != nil {
		t.Fatalf("readSettings after takeStartReport: %v", err)
	}
}
