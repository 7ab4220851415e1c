// Package mono is wghooks' one monotonic clock for the packet paths: a
// reading is an int64 that fits an atomic, and 0 is never a reading, so
// an atomic holding one can use 0 for "unset".
package mono

import "time"

var base = time.Now()

// Now is nanoseconds on the monotonic clock since the process started,
// never 0.
func Now() int64 { return int64(time.Since(base)) + 1 }
