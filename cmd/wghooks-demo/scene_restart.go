package main

import (
	"encoding/hex"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	"wghooks/device"
)

func init() {
	scenes = append(scenes, scene{order: 20, name: "restart", title: "A server restarts under a roaming client that keeps sending", run: sceneRestart})
}

// restartUpWindow is how long the upstream server is watched after its
// restart; its client needs about 15 s on its own.
const restartUpWindow = 3 * time.Second

func sceneRestart(tl *timeline) error {
	dir, err := os.MkdirTemp("", "wghooks-demo-restart-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	cfg := device.Config{Restart: device.RestartConfig{
		Broadcast: device.BroadcastAtFirstPeers, // netstack is up before it is configured
		StateFile: filepath.Join(dir, "wg0.json"),
	}}
	serverPriv, serverPub := newKey()
	phonePriv, phonePub := newKey()
	phone, err := startUpstreamClient("198.18.20.2", phonePriv, phonePub)
	if err != nil {
		return err
	}
	defer phone.dev.Close()
	phoneAsPeer := &node{name: "phone", pub: phonePub, addr: phone.addr}

	server, err := startNode("server", "198.18.20.1", serverPriv, 0, cfg)
	if err != nil {
		return err
	}
	if err := server.addPeer(phoneAsPeer, false); err != nil {
		server.dev.Close()
		return err
	}
	port := server.port
	if err := restartPointAt(phone, serverPub, server.addr, port); err != nil {
		server.dev.Close()
		return err
	}
	tl.say("server: wghooks on udp %d, state file in %s; phone: plain upstream wireguard-go, roaming (the server has no address for it)", port, dir)
	if _, err := restartPingUntil(phone, server.addr, 5*time.Second); err != nil {
		server.dev.Close()
		return fmt.Errorf("first ping: %w", err)
	}
	tl.say("phone → server: ping answered; the server learned the phone's address")

	pings := startHAPings(phone.ping, server.addr)
	server.dev.Close()
	tl.say("server stopped; it saved the phone's address; the phone keeps pinging into the void")
	time.Sleep(time.Second)
	pings.close()

	t0 := time.Now()
	server, err = startNode("server", "198.18.20.1", serverPriv, port, cfg)
	if err != nil {
		return err
	}
	defer server.dev.Close()
	if err := server.addPeer(phoneAsPeer, false); err != nil {
		return err
	}
	tl.say("new server process up with the same key and configuration (still no address for the phone)")
	back, err := restartPingUntil(phone, server.addr, 10*time.Second)
	if err != nil {
		return fmt.Errorf("after the restart: %w", err)
	}
	ours := back.Sub(t0)
	tl.say("phone's ping answered: the server took the phone's address from the state file and initiated the handshake itself")

	// The same restart with a plain upstream server.
	upServer, err := startUpstreamClient("198.18.21.1", serverPriv, serverPub)
	if err != nil {
		return err
	}
	phone2Priv, phone2Pub := newKey()
	phone2, err := startUpstreamClient("198.18.21.2", phone2Priv, phone2Pub)
	if err != nil {
		upServer.dev.Close()
		return err
	}
	defer phone2.dev.Close()
	phone2Conf := fmt.Sprintf("public_key=%s\nallowed_ip=%s/32\n", hex.EncodeToString(phone2Pub[:]), phone2.addr)
	if err := upServer.dev.IpcSet(phone2Conf); err != nil {
		upServer.dev.Close()
		return err
	}
	upPort := upServer.port()
	if err := restartPointAt(phone2, serverPub, upServer.addr, upPort); err != nil {
		upServer.dev.Close()
		return err
	}
	if _, err := restartPingUntil(phone2, upServer.addr, 5*time.Second); err != nil {
		upServer.dev.Close()
		return fmt.Errorf("first ping through upstream: %w", err)
	}
	pings = startHAPings(phone2.ping, upServer.addr)
	upServer.dev.Close()
	time.Sleep(time.Second)
	pings.close()
	tUp := time.Now()
	upServer, err = startUpstreamClient("198.18.21.1", serverPriv, serverPub)
	if err != nil {
		return err
	}
	defer upServer.dev.Close()
	if err := upServer.dev.IpcSet(fmt.Sprintf("listen_port=%d\n", upPort) + phone2Conf); err != nil {
		return err
	}
	upStatus := fmt.Sprintf("still down after %s", restartUpWindow)
	if back, err := restartPingUntil(phone2, upServer.addr, restartUpWindow); err == nil {
		upStatus = fmt.Sprintf("back in %s", back.Sub(tUp).Round(time.Millisecond))
	}
	tl.say("server restarted → traffic back in %s (upstream, same restart: %s)", ours.Round(time.Millisecond), upStatus)
	return nil
}

// restartPointAt makes the server at addr, port 127.0.0.1:port, the
// client's only peer.
func restartPointAt(c *haUpstreamClient, serverPub [32]byte, addr netip.Addr, port uint16) error {
	return c.dev.IpcSet(fmt.Sprintf("public_key=%s\nallowed_ip=%s/32\nendpoint=127.0.0.1:%d\n", hex.EncodeToString(serverPub[:]), addr, port))
}

// restartPingUntil pings every 20 ms until a reply or timeout, and returns
// when the reply came.
func restartPingUntil(c *haUpstreamClient, to netip.Addr, timeout time.Duration) (time.Time, error) {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if err := c.ping(to, 20*time.Millisecond); err == nil {
			return time.Now(), nil
		}
	}
	return time.Time{}, fmt.Errorf("no reply within %v", timeout)
}
