// Package ops serves a device's operations endpoint over HTTP, for load
// balancers, orchestrators and monitoring:
//
//	/healthz  200 while the process and the device are alive
//	/readyz   200 when up, configured and not draining; 503 otherwise
//	          (before the first configuration, while draining), so a
//	          balancer stops sending new flows before the process goes
//	/metrics  Prometheus metrics: wghooks_* read from Device.Stats at
//	          scrape time, and per-peer series under
//	          prometheus_wireguard_exporter's names (peers.go), read from
//	          Device.PeerStats at most once a second and capped
//	          (Config.MaxPeers); optionally behind a bearer token
//	          (Config.Token)
//
// A load balancer that can only probe TCP or HTTP learns WireGuard's state
// from /readyz. The endpoint listens on loopback unless told otherwise.
package ops
