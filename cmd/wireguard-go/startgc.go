package main

// Garbage collection waits for the start. When the device comes up (just
// after the daemon serves UAPI: the TUN's first up event), upstream gives
// each receive routine and the TUN reader a batch of 64 KiB message
// buffers (about 32 MiB on Linux), live from then on. With the default
// GOGC the collector runs four times while the heap grows there from the
// runtime's first 4 MiB goal, finding nothing to free, on the cores that
// answer the first UAPI request: on this project's two-core test machine
// GOGC=off took 2.8 ms off a 10 ms start (exec to UAPI answering), and
// 1.1 ms off upstream's 6 ms.

import (
	"os"
	"runtime"
	"runtime/debug"
	"sync"
	"time"
)

// startHeapLimit bounds the heap while collection waits: reaching it
// collects once and ends the wait (a large configuration), so a heap that
// stays above it is not collected over and over.
const startHeapLimit = 64 << 20

// startGCGrace is how long after serving UAPI collection still waits, for
// the device's first Up and its buffers.
const startGCGrace = time.Second

// holdGC turns collection off until release (startGCGrace after the
// daemon serves UAPI, or when its start ended) or until the heap reaches
// startHeapLimit, unless the operator chose with GOGC or GOMEMLIMIT.
// release may be called more than once, from any goroutine.
func holdGC() (release func()) {
	if os.Getenv("GOGC") != "" || os.Getenv("GOMEMLIMIT") != "" {
		return func() {}
	}
	limit := debug.SetMemoryLimit(startHeapLimit)
	percent := debug.SetGCPercent(-1)
	var once sync.Once
	release = func() {
		once.Do(func() {
			debug.SetGCPercent(percent)
			debug.SetMemoryLimit(limit)
		})
	}
	// The first collection, whenever it comes, finalizes the sentinel:
	// while held, that is the heap reaching the limit.
	sentinel := &struct{ _ *byte }{}
	runtime.SetFinalizer(sentinel, func(any) { go release() })
	return release
}
