package testkit

// Log capture: a device's log lines, kept for assertions and shown when
// the test fails.

import (
	"bytes"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

// Log collects log lines: those of Logf stamped with the time of day,
// those written to it (a process's output) as they are. It is safe for
// concurrent use; Logf fits device.Config's Verbosef and Errorf, and a Log
// is an io.Writer for exec.Cmd's Stdout and Stderr.
type Log struct {
	mu      sync.Mutex
	lines   []string
	partial []byte        // written after the last newline
	changed chan struct{} // closed and replaced on each new line
}

// NewLog returns an empty log. With tb non-nil, the log is printed, headed
// "log of NAME", at Cleanup if the test failed or WGTEST_LOG is set.
func NewLog(tb testing.TB, name string) *Log {
	l := &Log{changed: make(chan struct{})}
	if tb != nil {
		tb.Cleanup(func() {
			if tb.Failed() || os.Getenv("WGTEST_LOG") != "" {
				tb.Logf("log of %s:\n%s", name, l)
			}
		})
	}
	return l
}

// Logf adds one line.
func (l *Log) Logf(format string, args ...any) {
	line := time.Now().Format("15:04:05.000 ") + fmt.Sprintf(format, args...)
	l.mu.Lock()
	defer l.mu.Unlock()
	l.addLocked(line)
}

// Write adds the complete lines in p, as they are; a last line without
// its newline waits for the rest.
func (l *Log) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.partial = append(l.partial, p...)
	for {
		i := bytes.IndexByte(l.partial, '\n')
		if i < 0 {
			break
		}
		l.addLocked(string(l.partial[:i]))
		l.partial = l.partial[i+1:]
	}
	return len(p), nil
}

func (l *Log) addLocked(line string) {
	l.lines = append(l.lines, line)
	if l.changed != nil {
		close(l.changed)
	}
	l.changed = make(chan struct{})
}

// String is every line so far, each ended by a newline, then any
// unfinished line: for written output, exactly what was written.
func (l *Log) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var b strings.Builder
	for _, line := range l.lines {
		b.WriteString(line)
		b.WriteByte('\n')
	}
	b.Write(l.partial)
	return b.String()
}

// Count is how many lines so far contain substr.
func (l *Log) Count(substr string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, s := range l.lines {
		if strings.Contains(s, substr) {
			n++
		}
	}
	return n
}

// Wait waits up to timeout for a line containing substr and returns the
// first such line, or reports false.
func (l *Log) Wait(substr string, timeout time.Duration) (string, bool) {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	seen := 0
	for {
		l.mu.Lock()
		for ; seen < len(l.lines); seen++ {
			if strings.Contains(l.lines[seen], substr) {
				line := l.lines[seen]
				l.mu.Unlock()
				return line, true
			}
		}
		if l.changed == nil {
			l.changed = make(chan struct{})
		}
		changed := l.changed
		l.mu.Unlock()
		select {
		case <-changed:
		case <-deadline.C:
			return "", false
		}
	}
}

// WaitFor is Wait that fails the test (Fatal) when no such line comes.
func (l *Log) WaitFor(tb testing.TB, substr string, timeout time.Duration) string {
	tb.Helper()
	line, ok := l.Wait(substr, timeout)
	if !ok {
		tb.Fatalf("timed out after %v waiting for a log line with %q", timeout, substr)
	}
	return line
}
