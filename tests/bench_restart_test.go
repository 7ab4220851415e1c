package tests

import (
	"os"
	"testing"
	"time"

	"github.com/wghooks/wghooks/device"
)

// BenchmarkRestartRecovery measures, for each restart scenario, the
// seconds from the new server being up (configured, link up) to the
// first packet through, for wghooks and for plain upstream in the same
// run. Upstream gets up to WGTEST_BENCH_RESTART_CAP (default 30s): when
// it has not recovered by then, the cap is reported with recovered=0.
// scripts/bench/restart.sh prints the table.
//
//	go test -run '^$' -bench BenchmarkRestartRecovery -benchtime 1x ./tests
func BenchmarkRestartRecovery(b *testing.B) {
	limit := 30 * time.Second
	if v := os.Getenv("WGTEST_BENCH_RESTART_CAP"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			b.Fatalf("failed to parse WGTEST_BENCH_RESTART_CAP=%q: want a duration such as 30s", v)
		}
		limit = d
	}
	for _, sc := range append(restartScenarios[:len(restartScenarios):len(restartScenarios)], restartJITScenario) {
		for _, impl := range []string{"wghooks", "upstream"} {
			b.Run(sc.name+"/"+impl, func(b *testing.B) {
				var total time.Duration
				recovered := 0
				for i := 0; i < b.N; i++ {
					var out restartOutcome
					if sc == restartJITScenario && impl == "wghooks" {
						out, _, _ = restartJITRun(b, limit, 10*time.Millisecond)
					} else {
						out = restartRun(b, sc, impl == "upstream", limit, 10*time.Millisecond, device.Config{})
					}
					if out.recovered {
						total += out.after
						recovered++
					} else {
						total += limit
					}
				}
				b.ReportMetric(total.Seconds()/float64(b.N), "s/first-packet")
				b.ReportMetric(float64(recovered)/float64(b.N), "recovered")
			})
		}
	}
}
