package main

import (
	"fmt"
	"runtime/debug"
	"strings"
)

// defaultVersion is wghooks' version when neither -ldflags nor the module
// system says otherwise (a build from a checkout).
const defaultVersion = "0.1.0-wghooks"

// version is reported by --version; set with -ldflags "-X main.version=...".
// Left at defaultVersion, a binary built by `go install MODULE@vX` reports
// vX, read from its build information.
var version = defaultVersion

// upstreamModule is the engine wghooks runs, whose version --version
// reports.
const upstreamModule = "golang.zx2c4.com/wireguard"

// versionText is what --version prints. Its first line keeps upstream's
// shape ("wireguard-go vVERSION"), which scripts parse; the lines after
// the blank one name wghooks' version, the upstream module it runs and
// the Go toolchain. bi is nil when the binary carries no build
// information.
func versionText(bi *debug.BuildInfo, goos, goarch string) string {
	v, detail := wghooksVersion(bi)
	var b strings.Builder
	fmt.Fprintf(&b, "wireguard-go v%s\n\n", v)
	fmt.Fprintf(&b, "Userspace WireGuard daemon for %s-%s, built on wghooks.\n", goos, goarch)
	fmt.Fprintf(&b, "wghooks: %s%s\n", v, detail)
	fmt.Fprintf(&b, "upstream: %s %s\n", upstreamModule, upstreamVersion(bi))
	if bi != nil && bi.GoVersion != "" {
		fmt.Fprintf(&b, "go: %s\n", bi.GoVersion)
	}
	return b.String()
}

// wghooksVersion is wghooks' version without a leading "v", and what the
// build information adds (the commit of a build from a checkout).
func wghooksVersion(bi *debug.BuildInfo) (v, detail string) {
	v = version
	if bi == nil {
		return v, ""
	}
	if mv := bi.Main.Version; v == defaultVersion && mv != "" && mv != "(devel)" {
		v = mv
	}
	var rev, modified string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			modified = s.Value
		}
	}
	if rev != "" {
		if len(rev) > 12 {
			rev = rev[:12]
		}
		detail = " (commit " + rev
		if modified == "true" {
			detail += ", modified"
		}
		detail += ")"
	}
	return strings.TrimPrefix(v, "v"), detail
}

// upstreamVersion is the version of upstreamModule linked into this
// binary, with its replacement if go.mod replaced it.
func upstreamVersion(bi *debug.BuildInfo) string {
	if bi == nil {
		return "unknown (no build information)"
	}
	for _, m := range bi.Deps {
		if m.Path != upstreamModule {
			continue
		}
		if r := m.Replace; r != nil {
			return fmt.Sprintf("%s (replaced by %s %s)", m.Version, r.Path, r.Version)
		}
		return m.Version
	}
	return "unknown (not in the build information)"
}

// buildInfo is debug.ReadBuildInfo's answer, nil when there is none.
func buildInfo() *debug.BuildInfo {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return nil
	}
	return bi
}
