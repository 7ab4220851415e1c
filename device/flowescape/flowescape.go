package flowescape

// The feature: per-endpoint stamps set on the packet goroutines, and its
// configuration hooks and UAPI keys.

import (
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	wgconn "golang.zx2c4.com/wireguard/conn"

	"github.com/wghooks/wghooks/conn"
	"github.com/wghooks/wghooks/device/feature"
	"github.com/wghooks/wghooks/internal/mono"
	"github.com/wghooks/wghooks/uapi"
)

// FlowEscape is the flow-escape feature.
type FlowEscape struct {
	feature.Base
	host feature.Host
	cfg  Config

	fixedPort  atomic.Bool // a fixed listen_port is configured
	runtimeOff atomic.Bool // wghooks_flow_escape=off
	active     atomic.Bool // watching: none of the above, nor FlowEscapeOff

	flows struct {
		sync.RWMutex
		m map[netip.AddrPort]*flowState
	}
	last atomic.Pointer[flowState] // the most recently used state, to skip the map

	idle atomic.Bool   // the watcher sleeps until wake
	wake chan struct{} // capacity 1

	// nudgedAt is when an escape last sent other peers an initiation;
	// watcher goroutine only.
	nudgedAt time.Time

	// peerCache maps endpoints to peer keys; watcher goroutine only.
	peerCache struct {
		at   time.Time
		byEP map[netip.AddrPort][]feature.Key
	}
}

// flowState is one destination endpoint. The stamps are set on packet
// goroutines; w belongs to the watcher goroutine.
type flowState struct {
	addr netip.AddrPort
	// seq orders events; data, init and recv hold the seq of the latest
	// data batch sent, initiation sent and datagram received, so the
	// watcher knows whether a send came after the last answer even when
	// both fell between two samples.
	seq                    atomic.Uint64
	data, init, recv, resp atomic.Uint64
	// path measures the round trip and judges the data's silence.
	path feature.Path
	// initAt (mono) and inits (since the last answer) time an initiation
	// to its response; two outstanding make the sample ambiguous.
	initAt atomic.Int64
	inits  atomic.Int32
	// Flags the watcher swaps to false each sample: data heard, anything
	// sent (keepalives too). Anything heard is path's own flag (Update).
	heardData, sent atomic.Bool
	w               flowWatch
}

// flag sets b, writing only when it was clear.
func flag(b *atomic.Bool) {
	if !b.Load() {
		b.Store(true)
	}
}

// stamp records an event of one kind in st's order.
func (st *flowState) stamp(kind *atomic.Uint64) {
	v := st.seq.Add(1)
	for {
		old := kind.Load()
		if old >= v || kind.CompareAndSwap(old, v) {
			return
		}
	}
}

// New builds the feature; gateway is true for a device that provisions
// peers on first contact (a JIT provider): clients find it at its port,
// so it must never move.
func New(host feature.Host, cfg Config, gateway bool) *FlowEscape {
	f := &FlowEscape{host: host, cfg: cfg.withDefaults(), wake: make(chan struct{}, 1)}
	if gateway {
		f.cfg.FlowEscapeOff = true
	}
	f.flows.m = make(map[netip.AddrPort]*flowState)
	f.updateActive()
	if !f.cfg.FlowEscapeOff {
		host.Go(f.run)
	}
	return f
}

// Name is the feature's name in logs.
func (*FlowEscape) Name() string { return "flowescape" }

// Watching reports whether flow escape watches the flows now: not off by
// config, by UAPI, nor by a fixed listen port.
func (f *FlowEscape) Watching() bool { return f.active.Load() }

func (f *FlowEscape) updateActive() {
	f.active.Store(!f.cfg.FlowEscapeOff && !f.fixedPort.Load() && !f.runtimeOff.Load())
}

// Configured follows the listen port of every transaction that applied: a
// fixed one turns flow escape off (a server: its port is its address), 0
// (random) lets it run.
func (f *FlowEscape) Configured(c feature.Change) {
	if c.Err != nil {
		return
	}
	for _, l := range c.Set.Device {
		if l.Key != "listen_port" {
			continue
		}
		if port, err := strconv.ParseUint(l.Value, 10, 16); err == nil {
			f.fixedPort.Store(port != 0)
			f.updateActive()
		}
	}
}

// ReceiveTypes selects every message type, unless flow escape is off.
func (f *FlowEscape) ReceiveTypes() uint8 {
	if f.cfg.FlowEscapeOff {
		return 0
	}
	return conn.TypeMask(conn.MessageInitiation, conn.MessageResponse, conn.MessageCookieReply, conn.MessageTransport)
}

// OnReceive stamps a datagram heard from a tracked endpoint. Any type
// counts: a cookie reply, too, says the far end is alive.
func (f *FlowEscape) OnReceive(p []byte, ep wgconn.Endpoint) conn.Verdict {
	if !f.active.Load() {
		return conn.Pass
	}
	st := f.lookup(ep, false)
	if st == nil {
		return conn.Pass
	}
	if p[0] == conn.MessageTransport && len(p) > conn.MessageKeepaliveSize {
		flag(&st.heardData)
	}
	// While nothing was sent since the last answer, another answer
	// changes nothing the watcher looks at: skip the write.
	if st.recv.Load() != st.seq.Load() {
		if p[0] == conn.MessageResponse {
			if st.inits.Swap(0) == 1 {
				st.path.RTT.Sample(time.Duration(mono.Now() - st.initAt.Load()))
			}
			st.stamp(&st.resp)
		}
		st.stamp(&st.recv)
	}
	st.path.Heard()
	if f.idle.Load() {
		f.wakeWatcher()
	}
	return conn.Pass
}

func (f *FlowEscape) wakeWatcher() {
	if f.idle.CompareAndSwap(true, false) {
		select {
		case f.wake <- struct{}{}:
		default:
		}
	}
}

// OnSend stamps initiations (sent alone) and data batches. A batch of
// keepalives only is not stamped: nothing answers a keepalive.
func (f *FlowEscape) OnSend(bufs [][]byte, ep wgconn.Endpoint) {
	if len(bufs) == 0 || !f.active.Load() {
		return
	}
	initiation, data := false, false
	switch conn.MessageType(bufs[0]) {
	case conn.MessageInitiation:
		if len(bufs) != 1 {
			return
		}
		initiation = true
	case conn.MessageTransport:
		for _, b := range bufs {
			if len(b) > conn.MessageKeepaliveSize {
				data = true
				break
			}
		}
	default:
		return
	}
	st := f.lookup(ep, true)
	if st == nil {
		return
	}
	flag(&st.sent)
	switch {
	case initiation:
		st.initAt.Store(mono.Now())
		st.inits.Add(1)
		st.stamp(&st.init)
	case data:
		st.path.Sent()
		st.stamp(&st.data)
	default:
		// A keepalive: nothing answers it, but it keeps the endpoint in
		// use for the quiet probe; the watcher need not wake for it.
		return
	}
	if f.idle.Load() {
		f.wakeWatcher()
	}
}

// lookup finds the state for ep's destination, creating it when asked
// and room is left.
func (f *FlowEscape) lookup(ep wgconn.Endpoint, create bool) *flowState {
	addr := conn.DstAddrPort(ep)
	if !addr.IsValid() {
		return nil
	}
	if st := f.last.Load(); st != nil && st.addr == addr {
		return st
	}
	f.flows.RLock()
	st := f.flows.m[addr]
	f.flows.RUnlock()
	if st == nil && create {
		f.flows.Lock()
		if st = f.flows.m[addr]; st == nil && len(f.flows.m) < maxFlows {
			st = &flowState{addr: addr}
			f.flows.m[addr] = st
		}
		f.flows.Unlock()
	}
	if st != nil {
		f.last.Store(st)
	}
	return st
}

// Keys is wghooks_flow_escape=auto|off: flow escape on (while the listen
// port is random) or off, at run time.
func (f *FlowEscape) Keys() []feature.ExtKey {
	return []feature.ExtKey{{
		Name:     "wghooks_flow_escape",
		Doc:      "auto|off: move to a new source port when a peer behind a load balancer stops answering (auto: only while listen_port is random)",
		Validate: feature.ValidateOneOf("auto", "off"),
		ApplyDevice: func(v string) error {
			f.runtimeOff.Store(v == "off")
			f.updateActive()
			return nil
		},
	}}
}

// GetLines reports wghooks_flow_escape.
func (f *FlowEscape) GetLines() []uapi.Line {
	v := "auto"
	if f.cfg.FlowEscapeOff || f.runtimeOff.Load() {
		v = "off"
	}
	return []uapi.Line{{Key: "wghooks_flow_escape", Value: v}}
}
