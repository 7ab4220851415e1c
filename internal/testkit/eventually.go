package testkit

// Waiting: poll a condition with a deadline. A test waits for the state it
// wants and then asserts; it never sleeps and hopes the state was reached.

import (
	"testing"
	"time"
)

// PollEvery is how often Eventually and Poll check their condition.
const PollEvery = 10 * time.Millisecond

// Poll checks cond every PollEvery until it holds (true) or timeout has
// passed (false). cond is checked once more at the deadline.
func Poll(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return cond()
		}
		time.Sleep(PollEvery)
	}
}

// Eventually polls cond until it holds, and fails the test (Fatal) if it
// still does not after timeout; what names the awaited state in the
// failure.
func Eventually(tb testing.TB, timeout time.Duration, what string, cond func() bool) {
	tb.Helper()
	if !Poll(timeout, cond) {
		tb.Fatalf("timed out after %v waiting for %s", timeout, what)
	}
}

// EventuallyNil polls cond until it returns nil, and fails the test
// (Fatal) with cond's last error if it still does not after timeout.
func EventuallyNil(tb testing.TB, timeout time.Duration, what string, cond func() error) {
	tb.Helper()
	var err error
	if !Poll(timeout, func() bool { err = cond(); return err == nil }) {
		tb.Fatalf("timed out after %v waiting for %s: %v", timeout, what, err)
	}
}
