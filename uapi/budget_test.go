package uapi

import (
	"bufio"
	"errors"
	"strings"
	"testing"
)

func TestBudgetRefusesAndReleases(t *testing.T) {
	b := NewBudget(200)
	in := "a=1\nb=2\n\n" + strings.Repeat("c=3\n", 20) + "\nd=4\n\n"
	r := bufio.NewReader(strings.NewReader(in))

	lines, ended, held, err := ReadTransactionBudget(r, b)
	if err != nil || !ended || len(lines) != 2 || held == 0 {
		t.Fatalf("small transaction: lines=%q held=%d err=%v", lines, held, err)
	}
	// The second transaction does not fit next to the first.
	lines, ended, held2, err := ReadTransactionBudget(r, b)
	var coded Coded
	if !errors.As(err, &coded) || coded.ErrorCode() != ErrnoNoMemory || lines != nil || held2 != 0 || !ended {
		t.Fatalf("over budget: lines=%d held=%d ended=%v err=%v", len(lines), held2, ended, err)
	}
	// It was consumed whole: the next one starts cleanly, and once the
	// first is released there is room again.
	b.Release(held)
	lines, _, held, err = ReadTransactionBudget(r, b)
	if err != nil || len(lines) != 1 || lines[0] != "d=4" {
		t.Fatalf("after release: lines=%q err=%v", lines, err)
	}
	b.Release(held)
	if b.left.Load() != 200 {
		t.Fatalf("budget leaked: %d of 200 left", b.left.Load())
	}
}
