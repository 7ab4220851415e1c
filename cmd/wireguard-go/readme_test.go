package main

import (
	"bytes"
	"flag"
	"os"
	"testing"
)

var update = flag.Bool("update", false, "rewrite README.md's settings list from the table")

const (
	readmePath  = "../../README.md"
	readmeBegin = "<!-- settings:begin -->\n"
	readmeEnd   = "<!-- settings:end -->\n"
)

// TestREADMESettings fails when README.md's settings list is not the one
// the table generates. Rewrite it with
//
//	go test ./cmd/wireguard-go -run TestREADMESettings -update
func TestREADMESettings(t *testing.T) {
	readme, err := os.ReadFile(readmePath)
	if err != nil {
		t.Fatal(err)
	}
	i := bytes.Index(readme, []byte(readmeBegin))
	j := bytes.Index(readme, []byte(readmeEnd))
	if i < 0 || j < i {
		t.Fatalf("README.md has no %q ... %q section", readmeBegin, readmeEnd)
	}
	i += len(readmeBegin)
	want := "<!-- generated from cmd/wireguard-go/settings.go by: go test ./cmd/wireguard-go -run TestREADMESettings -update -->\n\n" +
		settingsTable.Markdown() + "\n"
	if string(readme[i:j]) == want {
		return
	}
	if !*update {
		t.Fatalf("README.md's settings list differs from the table; run go test ./cmd/wireguard-go -run TestREADMESettings -update")
	}
	out := append(append(append([]byte{}, readme[:i]...), want...), readme[j:]...)
	if err := os.WriteFile(readmePath, out, 0o644); err != nil {
		t.Fatal(err)
	}
}
