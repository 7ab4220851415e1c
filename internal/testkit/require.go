package testkit

// Real parts: a test that needs a program the machine may lack (nginx,
// Prometheus, systemd-analyze) skips where it is missing and fails in CI.

import (
	"fmt"
	"os"
	"strconv"
	"testing"
)

// Missing ends tb because a real part it needs is not installed: a skip
// saying what is missing, or a failure when CI=true (CI installs every
// part, so a missing one there is a broken set-up, not a reason to skip).
func Missing(tb testing.TB, format string, args ...any) {
	tb.Helper()
	msg := fmt.Sprintf(format, args...)
	if ci, _ := strconv.ParseBool(os.Getenv("CI")); ci {
		tb.Fatalf("%s (CI=true: .ci/run and scripts/install-deps.sh install it)", msg)
	}
	tb.Skipf("skipping: %s", msg)
}
