package mono

import "testing"

func TestNowIsNeverZeroAndNeverGoesBack(t *testing.T) {
	prev := Now()
	for i := 0; i < 1000; i++ {
		n := Now()
		if n == 0 || n < prev {
			t.Fatalf("reading %d: %d after %d", i, n, prev)
		}
		prev = n
	}
}
