package tun

import (
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"sync"
	"testing"
	"time"

	wgtun "golang.zx2c4.com/wireguard/tun"
)

// TestNetstackCloseWhileWriting closes a netstack TUN while packets that
// make netstack answer inline (echo requests) are being written and a
// reader takes the answers, as the device's TUN reader does: Close must
// neither race nor panic, and a Write after it reports the TUN closed.
func TestNetstackCloseWhileWriting(t *testing.T) {
	local := netip.MustParseAddr("198.18.0.1")
	for round := 0; round < 20; round++ {
		dev, _, err := NewNetstack([]netip.Addr{local}, 0)
		if err != nil {
			t.Fatal(err)
		}
		echo := icmpEcho(netip.MustParseAddr("198.18.0.2"), local)
		var wg sync.WaitGroup
		stop := make(chan struct{})
		wg.Add(2)
		go func() { // the device's TUN reader
			defer wg.Done()
			bufs, sizes := [][]byte{make([]byte, 2048)}, []int{0}
			for {
				if _, err := dev.Read(bufs, sizes, 0); err != nil {
					return
				}
			}
		}()
		go func() { // the device's receive path
			defer wg.Done()
			for i := 0; i < 10_000; i++ {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := dev.Write([][]byte{append([]byte(nil), echo...)}, 0); err != nil {
					return
				}
			}
		}()
		time.Sleep(time.Millisecond)
		if err := dev.Close(); err != nil {
			t.Fatal(err)
		}
		close(stop)
		wg.Wait()
		if _, err := dev.Write([][]byte{echo}, 0); !errors.Is(err, os.ErrClosed) {
			t.Fatalf("Write after Close: %v, want os.ErrClosed", err)
		}
		if err := dev.Close(); err != nil {
			t.Fatalf("second Close: %v", err)
		}
	}
}

// icmpEcho builds an IPv4 ICMP echo request from src to dst.
func icmpEcho(src, dst netip.Addr) []byte {
	p := make([]byte, 28)
	p[0], p[8], p[9] = 0x45, 64, 1 // version/IHL, TTL, ICMP
	binary.BigEndian.PutUint16(p[2:], uint16(len(p)))
	s4, d4 := src.As4(), dst.As4()
	copy(p[12:], s4[:])
	copy(p[16:], d4[:])
	binary.BigEndian.PutUint16(p[10:], checksum(p[:20]))
	p[20] = 8 // echo request
	binary.BigEndian.PutUint16(p[24:], 1)
	binary.BigEndian.PutUint16(p[22:], checksum(p[20:]))
	return p
}

func checksum(b []byte) uint16 {
	var sum uint32
	for i := 0; i+1 < len(b); i += 2 {
		sum += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	if len(b)%2 == 1 {
		sum += uint32(b[len(b)-1]) << 8
	}
	for sum > 0xffff {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}

// TestNetstackCloseDuringTCP closes a netstack TUN while a TCP stream
// into it is running. Netstack answers the stream's segments (ACKs, and
// resets once its endpoints close) from its own goroutines, outside any
// Write: Close must not race with those sends either (under -race), nor
// panic.
func TestNetstackCloseDuringTCP(t *testing.T) {
	addrA, addrB := netip.MustParseAddr("198.18.0.1"), netip.MustParseAddr("198.18.0.2")
	for round := 0; round < 20; round++ {
		devA, netA, err := NewNetstack([]netip.Addr{addrA}, 0)
		if err != nil {
			t.Fatal(err)
		}
		devB, netB, err := NewNetstack([]netip.Addr{addrB}, 0)
		if err != nil {
			t.Fatal(err)
		}
		var pumps sync.WaitGroup
		pump := func(from, to wgtun.Device) { // a cable between the two, as a tunnel is
			defer pumps.Done()
			bufs, sizes := [][]byte{make([]byte, 2048)}, []int{0}
			for {
				n, err := from.Read(bufs, sizes, 0)
				if err != nil {
					return
				}
				if n > 0 {
					to.Write([][]byte{append([]byte(nil), bufs[0][:sizes[0]]...)}, 0)
				}
			}
		}
		pumps.Add(2)
		go pump(devA, devB)
		go pump(devB, devA)

		ln, err := netB.ListenTCPAddrPort(netip.AddrPortFrom(addrB, 80))
		if err != nil {
			t.Fatal(err)
		}
		accepted := make(chan net.Conn, 1)
		go func() {
			c, err := ln.Accept()
			if err != nil {
				close(accepted)
				return
			}
			accepted <- c
			io.Copy(io.Discard, c)
		}()
		c, err := netA.DialTCPAddrPort(netip.AddrPortFrom(addrB, 80))
		if err != nil {
			t.Fatal(err)
		}
		sent := make(chan struct{})
		go func() {
			defer close(sent)
			chunk := make([]byte, 32<<10)
			c.SetWriteDeadline(time.Now().Add(5 * time.Second))
			for i := 0; i < 1000; i++ {
				if _, err := c.Write(chunk); err != nil {
					return
				}
			}
		}()
		time.Sleep(20 * time.Millisecond)
		// The receiving side closes mid-stream: its endpoint answers the
		// segments still arriving with resets, from netstack's goroutines.
		if sc, ok := <-accepted; ok {
			sc.Close()
		}
		ln.Close()
		time.Sleep(time.Duration(round%4) * time.Millisecond)
		if err := devB.Close(); err != nil {
			t.Fatal(err)
		}
		c.Close()
		<-sent
		if err := devA.Close(); err != nil {
			t.Fatal(err)
		}
		pumps.Wait()
	}
}
