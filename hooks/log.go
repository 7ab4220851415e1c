package hooks

// Logf is a printf-style logging function. A nil Logf discards.
// It may be called from any goroutine, concurrently.
type Logf func(format string, args ...any)

// Printf calls f when it is non-nil.
func (f Logf) Printf(format string, args ...any) {
	if f != nil {
		f(format, args...)
	}
}
