package main

import (
	"testing"
	"time"

	"github.com/wghooks/wghooks/internal/pgtest"
)

// TestFleetDemo runs the demo as `make demo-fleet` does; it needs
// PostgreSQL (skips without it, fails when CI=true).
func TestFleetDemo(t *testing.T) {
	if _, err := pgtest.Bin(); err != nil {
		pgtest.Missing(t, err.Error())
	}
	if err := run(&timeline{start: time.Now()}); err != nil {
		t.Fatal(err)
	}
}
