package udprelay

import (
	"net"
	"testing"
	"time"
)

// An impaired relay drops about Loss of the datagrams and delays the
// rest; Close waits for the ones it still holds.
func TestImpairLosesAndDelays(t *testing.T) {
	echo, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer echo.Close()
	go func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := echo.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			echo.WriteToUDPAddrPort(buf[:n], from)
		}
	}()
	_, relays, err := Start(echo.LocalAddr().(*net.UDPAddr).AddrPort(), []string{"127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	r := relays["127.0.0.1"]
	defer r.Close()
	r.SetImpair(Impair{Loss: 0.2, Delay: 20 * time.Millisecond, Jitter: 10 * time.Millisecond, Seed: 7})

	c, err := net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(r.Addr))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	const n = 400
	for i := 0; i < n; i++ {
		if _, err := c.Write([]byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Millisecond) // no socket buffer overflows
	}
	got := 0
	buf := make([]byte, 10)
	c.SetReadDeadline(time.Now().Add(3 * time.Second))
	for {
		if _, err := c.Read(buf); err != nil {
			break
		}
		got++
	}
	// Both ways lose 20 %: about 64 % come back.
	if got < n*50/100 || got > n*78/100 {
		t.Fatalf("%d of %d came back through 20 %% loss each way, want about 64 %%", got, n)
	}
	if lost := r.Lost(); int(lost) < (n-got)*8/10 {
		t.Fatalf("relay counts %d lost, %d missing", lost, n-got)
	}
}
