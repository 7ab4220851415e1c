package ipc

import (
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/wghooks/wghooks/uapi"
)

// countingHandler applies nothing; it counts transactions.
type countingHandler struct{ sets int }

func (h *countingHandler) IpcSetOperation(io.Reader) error { h.sets++; return nil }
func (h *countingHandler) IpcGetOperation(io.Writer) error { return nil }

// TestHeldMemoryIsReleasedAndBounded: many small transactions in a row
// never exhaust the shared budget (each releases what it held), and one
// larger than what is left is refused with -ENOMEM and never applied.
func TestHeldMemoryIsReleasedAndBounded(t *testing.T) {
	h := &countingHandler{}
	s := NewServer(h, nil)
	s.budget = uapi.NewBudget(2000)
	dir := t.TempDir()
	ln, err := Listen(dir, "wgbudget0")
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(ln)
	defer s.Close()
	c, err := Dial(dir, "wgbudget0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for i := 0; i < 100; i++ {
		if err := c.Set("fwmark=1", "listen_port=2"); err != nil {
			t.Fatalf("set %d: %v", i, err)
		}
	}
	err = c.Set(strings.Split(strings.Repeat("fwmark=1\n", 100), "\n")[:100]...)
	var coded uapi.Coded
	if !errors.As(err, &coded) || coded.ErrorCode() != uapi.ErrnoNoMemory {
		t.Fatalf("oversized for the budget: err = %v, want errno -ENOMEM", err)
	}
	if h.sets != 100 { // the refused one never reached the device
		t.Fatalf("handler applied %d transactions, want 100", h.sets)
	}
	// The connection survives the refusal.
	if err := c.Set("fwmark=1"); err != nil {
		t.Fatalf("set after the refusal: %v", err)
	}
}
