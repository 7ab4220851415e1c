package testkit

// Leaks: every goroutine a test starts ends with the test.

import (
	"testing"

	"go.uber.org/goleak"
)

// CheckLeaks fails the test at Cleanup if goroutines started since this
// call are still running (goleak retries for a while first, so goroutines
// on their way out are not reported). Call it first, so that it runs
// after every other Cleanup.
func CheckLeaks(t testing.TB) {
	t.Helper()
	opts := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, opts) })
}
