package main

import (
	"runtime/debug"
	"strings"
	"testing"
)

// TestVersionText: the first line keeps upstream's shape; wghooks' version
// and the upstream module version follow, from the build information.
func TestVersionText(t *testing.T) {
	bi := &debug.BuildInfo{
		GoVersion: "go1.26.8",
		Main:      debug.Module{Path: "github.com/wghooks/wghooks", Version: "(devel)"},
		Deps: []*debug.Module{
			{Path: "golang.org/x/net", Version: "v0.63.0"},
			{Path: upstreamModule, Version: "v0.0.0-20260522210424-ecfc5a8d5446"},
		},
		Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "0123456789abcdef0123"}, {Key: "vcs.modified", Value: "true"}},
	}
	got := versionText(bi, "linux", "amd64")
	want := "wireguard-go v" + defaultVersion + "\n\n" +
		"Userspace WireGuard daemon for linux-amd64, built on wghooks.\n" +
		"wghooks: " + defaultVersion + " (commit 0123456789ab, modified)\n" +
		"upstream: golang.zx2c4.com/wireguard v0.0.0-20260522210424-ecfc5a8d5446\n" +
		"go: go1.26.8\n"
	if got != want {
		t.Fatalf("versionText =\n%s\nwant\n%s", got, want)
	}

	// `go install github.com/wghooks/wghooks/cmd/wireguard-go@v1.2.3`:
	// the module version is wghooks' version.
	bi.Main.Version = "v1.2.3"
	bi.Settings = nil
	bi.Deps[1].Replace = &debug.Module{Path: "../wireguard-go", Version: ""}
	got = versionText(bi, "freebsd", "arm64")
	for _, line := range []string{"wireguard-go v1.2.3\n", "wghooks: 1.2.3\n",
		"upstream: golang.zx2c4.com/wireguard v0.0.0-20260522210424-ecfc5a8d5446 (replaced by ../wireguard-go )\n"} {
		if !strings.Contains(got, line) {
			t.Errorf("versionText of an installed module lacks %q:\n%s", line, got)
		}
	}
	if !strings.HasPrefix(got, "wireguard-go v1.2.3\n") {
		t.Errorf("first line changed shape:\n%s", got)
	}

	// A version set with -ldflags wins over the module's.
	defer func(v string) { version = v }(version)
	version = "2.0.0"
	if got := versionText(bi, "linux", "amd64"); !strings.HasPrefix(got, "wireguard-go v2.0.0\n") {
		t.Errorf("-ldflags version ignored:\n%s", got)
	}

	if got := versionText(nil, "linux", "amd64"); !strings.Contains(got, "upstream: golang.zx2c4.com/wireguard unknown") {
		t.Errorf("no build information:\n%s", got)
	}
}

// TestVersionTextThisBinary: this test binary links the upstream module,
// so its build information names a version.
func TestVersionTextThisBinary(t *testing.T) {
	bi := buildInfo()
	if bi == nil {
		t.Skip("test binary without build information")
	}
	if v := upstreamVersion(bi); !strings.HasPrefix(v, "v") {
		t.Fatalf("upstream version from this binary's build information = %q", v)
	}
}
