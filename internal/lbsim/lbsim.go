// Package lbsim is a flow-affine UDP load balancer for tests, benchmarks
// and the demo, modelled on cloud L4 balancers such as AWS NLB:
//
//   - A flow is a client address and port. Its first datagram picks a
//     backend by hashing the client address and port over the healthy
//     backends; every later datagram of the flow goes to that backend.
//   - Flow state expires only after the client has sent nothing for
//     IdleTimeout (120 s), or UnhealthyIdleTimeout (30 s) once its backend
//     is unhealthy. A client that keeps sending stays pinned to a dead
//     backend: this is the trap flow escape gets out of.
//   - Health comes from polling each backend's HTTP readiness URL.
//
// Each flow gets its own socket towards its backend, so backends see one
// source address per flow, as behind a NAT. It listens on loopback only.
package lbsim

import (
	"errors"
	"fmt"
	"hash/fnv"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// Backend is one server behind the balancer.
type Backend struct {
	// Addr is the backend's UDP address.
	Addr netip.AddrPort
	// Health is polled with GET; 200 is healthy. Empty: always healthy.
	Health string
}

// Config configures a balancer. Only Backends is required.
type Config struct {
	Backends []Backend
	// IdleTimeout expires a flow whose client sent nothing for this
	// long. Default 120 s.
	IdleTimeout time.Duration
	// UnhealthyIdleTimeout replaces IdleTimeout for flows whose backend
	// is unhealthy. Default 30 s.
	UnhealthyIdleTimeout time.Duration
	// HealthInterval is the time between health checks. Default 1 s.
	HealthInterval time.Duration
	// UnhealthyThreshold is how many failed checks in a row mark a
	// backend unhealthy; HealthyThreshold how many passed ones mark it
	// healthy again. Default 2 each. Backends start healthy.
	UnhealthyThreshold, HealthyThreshold int
	// MaxFlows bounds the flow table. Default 1024.
	MaxFlows int
}

// Flow is a snapshot of one flow.
type Flow struct {
	Client     netip.AddrPort
	Backend    int // index into Config.Backends
	FromClient uint64
	ToClient   uint64
	Created    time.Time
	LastClient time.Time // last datagram from the client
}

// LB is a running balancer.
type LB struct {
	cfg   Config
	front *net.UDPConn
	http  *http.Client

	healthy []atomic.Bool

	mu    sync.Mutex
	flows map[netip.AddrPort]*flow

	done      chan struct{}
	wg        sync.WaitGroup
	closeOnce sync.Once
}

type flow struct {
	client     netip.AddrPort
	backend    int
	conn       *net.UDPConn
	created    time.Time
	lastClient atomic.Int64 // unix nanos
	fromClient atomic.Uint64
	toClient   atomic.Uint64
}

// Start listens on 127.0.0.1 (a random port) and starts balancing.
func Start(cfg Config) (*LB, error) {
	if len(cfg.Backends) == 0 {
		return nil, fmt.Errorf("failed to start balancer: no backends")
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = 120 * time.Second
	}
	if cfg.UnhealthyIdleTimeout <= 0 {
		cfg.UnhealthyIdleTimeout = 30 * time.Second
	}
	if cfg.HealthInterval <= 0 {
		cfg.HealthInterval = time.Second
	}
	if cfg.UnhealthyThreshold <= 0 {
		cfg.UnhealthyThreshold = 2
	}
	if cfg.HealthyThreshold <= 0 {
		cfg.HealthyThreshold = 2
	}
	if cfg.MaxFlows <= 0 {
		cfg.MaxFlows = 1024
	}
	front, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return nil, fmt.Errorf("failed to start balancer: %w", err)
	}
	lb := &LB{
		cfg:     cfg,
		front:   front,
		http:    &http.Client{Timeout: cfg.HealthInterval, Transport: &http.Transport{DisableKeepAlives: true}},
		healthy: make([]atomic.Bool, len(cfg.Backends)),
		flows:   make(map[netip.AddrPort]*flow),
		done:    make(chan struct{}),
	}
	for i := range lb.healthy {
		lb.healthy[i].Store(true)
	}
	lb.wg.Add(3)
	go lb.serveFront()
	go lb.checkHealth()
	go lb.expireFlows()
	return lb, nil
}

// Addr is the address clients send to.
func (lb *LB) Addr() netip.AddrPort { return lb.front.LocalAddr().(*net.UDPAddr).AddrPort() }

// Healthy reports whether backend i is marked healthy.
func (lb *LB) Healthy(i int) bool { return lb.healthy[i].Load() }

// Flows returns a snapshot of the flow table.
func (lb *LB) Flows() []Flow {
	lb.mu.Lock()
	defer lb.mu.Unlock()
	out := make([]Flow, 0, len(lb.flows))
	for _, f := range lb.flows {
		out = append(out, Flow{
			Client: f.client, Backend: f.backend,
			FromClient: f.fromClient.Load(), ToClient: f.toClient.Load(),
			Created: f.created, LastClient: time.Unix(0, f.lastClient.Load()),
		})
	}
	return out
}

// FlowOf returns the current flow of a client address, if any.
func (lb *LB) FlowOf(client netip.AddrPort) (Flow, bool) {
	for _, f := range lb.Flows() {
		if f.Client == client {
			return f, true
		}
	}
	return Flow{}, false
}

// Close stops the balancer and waits for its goroutines. Idempotent.
func (lb *LB) Close() {
	lb.closeOnce.Do(func() {
		close(lb.done)
		lb.front.Close()
		lb.mu.Lock()
		for _, f := range lb.flows {
			f.conn.Close()
		}
		lb.mu.Unlock()
		lb.wg.Wait()
	})
}

// pick hashes a client over the healthy backends (all, if none is).
func (lb *LB) pick(client netip.AddrPort) int {
	var candidates []int
	for i := range lb.cfg.Backends {
		if lb.healthy[i].Load() {
			candidates = append(candidates, i)
		}
	}
	if len(candidates) == 0 {
		for i := range lb.cfg.Backends {
			candidates = append(candidates, i)
		}
	}
	h := fnv.New32a()
	b, _ := client.MarshalBinary()
	h.Write(b)
	return candidates[int(h.Sum32()%uint32(len(candidates)))]
}

func (lb *LB) serveFront() {
	defer lb.wg.Done()
	buf := make([]byte, 65535)
	for {
		n, client, err := lb.front.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		f := lb.flowFor(client)
		if f == nil {
			continue
		}
		f.fromClient.Add(1)
		f.lastClient.Store(time.Now().UnixNano())
		f.conn.Write(buf[:n]) // a dead backend's refusal is its own business
	}
}

// flowFor finds or creates the client's flow.
func (lb *LB) flowFor(client netip.AddrPort) *flow {
	lb.mu.Lock()
	defer lb.mu.Unlock()
	if f := lb.flows[client]; f != nil {
		return f
	}
	if len(lb.flows) >= lb.cfg.MaxFlows {
		return nil
	}
	select {
	case <-lb.done:
		return nil
	default:
	}
	i := lb.pick(client)
	conn, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(lb.cfg.Backends[i].Addr))
	if err != nil {
		return nil
	}
	f := &flow{client: client, backend: i, conn: conn, created: time.Now()}
	lb.flows[client] = f
	lb.wg.Add(1)
	go lb.serveFlow(f)
	return f
}

// serveFlow carries a backend's datagrams back to the flow's client.
func (lb *LB) serveFlow(f *flow) {
	defer lb.wg.Done()
	buf := make([]byte, 65535)
	for {
		n, err := f.conn.Read(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue // ECONNREFUSED from a dead backend: keep the flow
		}
		f.toClient.Add(1)
		lb.front.WriteToUDPAddrPort(buf[:n], f.client)
	}
}

func (lb *LB) expireFlows() {
	defer lb.wg.Done()
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-lb.done:
			return
		case <-t.C:
		}
		now := time.Now()
		lb.mu.Lock()
		for c, f := range lb.flows {
			idle := lb.cfg.IdleTimeout
			if !lb.healthy[f.backend].Load() {
				idle = lb.cfg.UnhealthyIdleTimeout
			}
			if now.Sub(time.Unix(0, f.lastClient.Load())) >= idle {
				f.conn.Close()
				delete(lb.flows, c)
			}
		}
		lb.mu.Unlock()
	}
}

func (lb *LB) checkHealth() {
	defer lb.wg.Done()
	fails := make([]int, len(lb.cfg.Backends))
	passes := make([]int, len(lb.cfg.Backends))
	t := time.NewTicker(lb.cfg.HealthInterval)
	defer t.Stop()
	for {
		select {
		case <-lb.done:
			return
		case <-t.C:
		}
		for i, b := range lb.cfg.Backends {
			if b.Health == "" {
				continue
			}
			if lb.probe(b.Health) {
				fails[i] = 0
				passes[i]++
				if passes[i] >= lb.cfg.HealthyThreshold {
					lb.healthy[i].Store(true)
				}
			} else {
				passes[i] = 0
				fails[i]++
				if fails[i] >= lb.cfg.UnhealthyThreshold {
					lb.healthy[i].Store(false)
				}
			}
		}
	}
}

func (lb *LB) probe(url string) bool {
	resp, err := lb.http.Get(url)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}
