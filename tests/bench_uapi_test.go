package tests

import (
	"net"
	"sync"
	"testing"

	"github.com/wghooks/wghooks/device"
	"github.com/wghooks/wghooks/internal/testkit"
	"github.com/wghooks/wghooks/ipc"
	"github.com/wghooks/wghooks/uapi"
)

// BenchmarkHardeningUAPIStorm measures the live heap (after a collection,
// sampled every 100 ms) that the control socket's worst case adds: every
// connection the server allows streaming a set transaction at once
// (hardStormPlan: most near MaxTransaction/HARD_UAPI_SCALE, two past
// MaxTransaction, two stopping mid-transaction and never finishing) while
// one more connection does gets; for our server and, in the same run,
// for plain upstream's (IpcHandle on a plain upstream device) with the
// same clients but the stalled ones: upstream holds its configuration
// lock for the whole of a transaction, so a client that never finishes
// blocks every other client there and the storm could not end. Reports
// the peak growth in MiB of both, HeldBudget, their ratio, and how the
// transactions were answered.
//
// Run with -benchtime 1x. HARD_UAPI_SCALE (default hardStormScale)
// divides MaxTransaction for the ordinary clients; 1 makes each of them
// maximal.
func BenchmarkHardeningUAPIStorm(b *testing.B) {
	scale := benchJITEnvInt("HARD_UAPI_SCALE", hardStormScale)

	_, d := testkit.NewWghooks(b, "198.18.12.1", device.Config{HA: device.HAConfig{FlowEscapeOff: true}})
	path := ipc.SocketPath(testkit.ServeUAPI(b, d, "hardb0", nil), "hardb0")
	clients := hardStormPlan(b, scale, true)
	ours := hardStorm(b, path, newHardStormObserver(b, path), clients)
	hardStormSettle(b, d, clients)

	_, ud := testkit.NewUpstream(b, "198.18.12.2", nil)
	dir := b.TempDir()
	ln, err := ipc.Listen(dir, "hardb1")
	if err != nil {
		b.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	var served sync.WaitGroup
	served.Add(1)
	go func() {
		defer served.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			served.Add(1)
			go func() { defer served.Done(); ud.IpcHandle(c) }()
		}
	}()
	b.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		served.Wait()
	})
	upPath := ipc.SocketPath(dir, "hardb1")
	upClients := hardStormPlan(b, scale, false)
	up := hardStorm(b, upPath, newHardStormObserver(b, upPath), upClients)

	mib := func(x float64) float64 { return x / (1 << 20) }
	oursGrew, upGrew := ours.peak-ours.before, up.peak-up.before
	b.Logf("ours: %d clients (normal %d MiB, over %d MiB, stalled %d MiB as uapi counts) in %v: live heap %.0f → peak %.0f MiB (+%.0f MiB; HeapAlloc after a collection +%.0f MiB), HeldBudget %d MiB; replies %v; %d gets meanwhile",
		len(clients), (uapi.MaxTransaction/scale)>>20, uapi.MaxTransaction>>20, (uapi.MaxTransaction/4)>>20,
		ours.took.Round(1e6), mib(ours.before), mib(ours.peak), mib(oursGrew), mib(ours.alloc-ours.before), ipc.HeldBudget>>20, ours.errnos, ours.gets)
	b.Logf("upstream: %d clients (no stalled ones) in %v: live heap %.0f → peak %.0f MiB (+%.0f MiB; HeapAlloc after a collection +%.0f MiB); replies %v; %d gets meanwhile",
		len(upClients), up.took.Round(1e6), mib(up.before), mib(up.peak), mib(upGrew), mib(up.alloc-up.before), up.errnos, up.gets)
	b.ReportMetric(mib(oursGrew), "ours-peak-MiB")
	b.ReportMetric(float64(ipc.HeldBudget>>20), "budget-MiB")
	b.ReportMetric(mib(upGrew), "upstream-peak-MiB")
	// Upstream streams each line into the device, so its growth is within
	// the noise of a collection (even below zero); the ratio takes it as at
	// least 1 MiB rather than dividing by noise.
	b.ReportMetric(oursGrew/max(upGrew, 1<<20), "ours/upstream_floor1MiB")
	b.ReportMetric(oursGrew/float64(ipc.HeldBudget), "ours/budget")
}
