package main

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/wghooks/wghooks/device"
	"github.com/wghooks/wghooks/internal/testkit"
)

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
	serverKey := testkit.NewKeypair()
	phoneKey := testkit.NewKeypair()
	phone, err := startUpstream("198.18.20.2", phoneKey, 0)
	if err != nil {
		return err
	}
	defer phone.dev.Close()

	server, err := startNode("server", "198.18.20.1", serverKey, 0, cfg)
	if err != nil {
		return err
	}
	if err := server.addPeer(phone.Node, false); err != nil {
		server.dev.Close()
		return err
	}
	port := server.Port
	if err := phone.dev.IpcSet(testkit.PeerConf(server.Node, true)); err != nil {
		server.dev.Close()
		return err
	}
	tl.say("server: wghooks on udp %d, state file in %s; phone: plain upstream wireguard-go, roaming (the server has no address for it)", port, dir)
	if _, err := phone.PingUntil(server.Addr, 20*time.Millisecond, 5*time.Second); err != nil {
		server.dev.Close()
		return fmt.Errorf("first ping: %w", err)
	}
	tl.say("phone → server: ping answered; the server learned the phone's address")

	pings := testkit.StartPinger(phone.Node, server.Addr)
	pings.Every(100 * time.Millisecond)
	server.dev.Close()
	tl.say("server stopped; it saved the phone's address; the phone keeps pinging into the void")
	time.Sleep(time.Second)
	pings.Stop()

	t0 := time.Now()
	server, err = startNode("server", "198.18.20.1", serverKey, port, cfg)
	if err != nil {
		return err
	}
	defer server.dev.Close()
	if err := server.addPeer(phone.Node, false); err != nil {
		return err
	}
	tl.say("new server process up with the same key and configuration (still no address for the phone)")
	if _, err := phone.PingUntil(server.Addr, 20*time.Millisecond, 10*time.Second); err != nil {
		return fmt.Errorf("after the restart: %w", err)
	}
	ours := time.Since(t0)
	tl.say("phone's ping answered: the server took the phone's address from the state file and initiated the handshake itself")

	// The same restart with a plain upstream server.
	upServer, err := startUpstream("198.18.21.1", serverKey, 0)
	if err != nil {
		return err
	}
	phone2Key := testkit.NewKeypair()
	phone2, err := startUpstream("198.18.21.2", phone2Key, 0)
	if err != nil {
		upServer.dev.Close()
		return err
	}
	defer phone2.dev.Close()
	phone2Conf := testkit.PeerConf(phone2.Node, false)
	if err := upServer.dev.IpcSet(phone2Conf); err != nil {
		upServer.dev.Close()
		return err
	}
	upPort := upServer.Port
	if err := phone2.dev.IpcSet(testkit.PeerConf(upServer.Node, true)); err != nil {
		upServer.dev.Close()
		return err
	}
	if _, err := phone2.PingUntil(upServer.Addr, 20*time.Millisecond, 5*time.Second); err != nil {
		upServer.dev.Close()
		return fmt.Errorf("first ping through upstream: %w", err)
	}
	pings = testkit.StartPinger(phone2.Node, upServer.Addr)
	pings.Every(100 * time.Millisecond)
	upServer.dev.Close()
	time.Sleep(time.Second)
	pings.Stop()
	tUp := time.Now()
	upServer, err = startUpstream("198.18.21.1", serverKey, upPort)
	if err != nil {
		return err
	}
	defer upServer.dev.Close()
	if err := upServer.dev.IpcSet(phone2Conf); err != nil {
		return err
	}
	upStatus := fmt.Sprintf("still down after %s", restartUpWindow)
	if _, err := phone2.PingUntil(upServer.Addr, 20*time.Millisecond, restartUpWindow); err == nil {
		upStatus = fmt.Sprintf("back in %s", time.Since(tUp).Round(time.Millisecond))
	}
	tl.say("server restarted → traffic back in %s (upstream, same restart: %s)", ours.Round(time.Millisecond), upStatus)
	return nil
}
