package feature

import "time"

var monoBase = time.Now()

// MonoNow is a monotonic clock in nanoseconds, never 0 (0 means "unset"
// in the packet-path atomics that hold its readings).
func MonoNow() int64 { return int64(time.Since(monoBase)) + 1 }
