package main

import (
	"testing"

	"github.com/wghooks/wghooks/cmd/wireguard-go/internal/settings"
)

// testSettings reads the settings of iface from kv alone: no process
// environment, and a settings file directory of the test's own unless kv
// names one.
func testSettings(t *testing.T, iface string, kv map[string]string) (*daemon, *settings.Values[daemon], error) {
	t.Helper()
	environ := []string{envConfigDir + "=" + t.TempDir()}
	for k, v := range kv {
		environ = append(environ, k+"="+v)
	}
	return readSettings(iface, environ)
}
