package device

import (
	"time"

	wgconn "golang.zx2c4.com/wireguard/conn"

	"github.com/wghooks/wghooks/conn"
	"github.com/wghooks/wghooks/device/endpoints"
	"github.com/wghooks/wghooks/device/feature"
	"github.com/wghooks/wghooks/device/flowescape"
	"github.com/wghooks/wghooks/device/guard"
	"github.com/wghooks/wghooks/device/jit"
	"github.com/wghooks/wghooks/device/restart"
	"github.com/wghooks/wghooks/hooks"
)

// The features, in the order the device calls them. Each sees the core
// only through feature.Host and never another feature.
//
// Why this order:
//
//  1. guard first: it drops floods and replays of initiations before any
//     other hook spends work on them (the restart's note of a recent
//     initiation, the JIT decode), and before they reach upstream.
//  2. restart next: it notes which addresses initiated to us (so its
//     broadcast does not cross them) and checks data for stale sessions,
//     before anything may hold the datagram; at Up it applies the state
//     file before the others start their own startup work.
//  3. endpoints: it watches the replies of hostname peers and sends their
//     copies; it never holds a datagram.
//  4. jit: it may hold an initiation from an unknown key (Hold ends the
//     walk), so everything that only watches goes before it.
//  5. flowescape last: it only stamps what was heard and sent.
//
// The core itself counts handshake messages and learns known sources
// (Sources.Seen) before any feature's hook runs.

// handles are the features as the Device's own methods reach them.
type handles struct {
	guard      *guard.Guard
	restart    *restart.Restart
	endpoints  *endpoints.Endpoints
	jit        *jit.JIT
	flowEscape *flowescape.FlowEscape
}

// buildFeatures builds the features d.cfg asks for, in the order above,
// and their key table. Each starts its goroutines as it is built; on an
// error the caller closes the device, which closes those built so far.
func (d *Device) buildFeatures() error {
	h := host{d}
	d.guard = guard.New(h, d.cfg.Guard)
	d.features = append(d.features, d.guard)

	// A device with a provider is a gateway: its peers may all come
	// from the provider (and the state file's jit section), and it must
	// never move its port.
	gateway := d.cfg.JIT.Provider != nil
	// Only jit re-injects (a held initiation), and only with a provider:
	// without one the bind's injection ReceiveFunc, and the 8 MiB of
	// buffers upstream gives it at every Up, are left out.
	d.bind.SetInject(gateway)
	// A provider shared by a fleet may also keep its learned state.
	store, _ := d.cfg.JIT.Provider.(hooks.StateStore)
	r, err := restart.New(h, d.cfg.Restart, restart.Wiring{ProviderPeers: gateway, Sections: d.stateSections, Store: store})
	if err != nil {
		return err
	}
	d.restart = r
	d.features = append(d.features, r)

	ep, err := endpoints.New(h, d.cfg.Endpoints)
	if err != nil {
		return err
	}
	d.endpoints = ep
	d.features = append(d.features, ep)

	j, err := jit.New(h, d.cfg.JIT)
	if err != nil {
		return err
	}
	d.jit = j
	d.features = append(d.features, j)

	d.flowEscape = flowescape.New(h, d.cfg.HA, gateway)
	d.features = append(d.features, d.flowEscape)

	keys, err := newExtensionKeys(d.features)
	if err != nil {
		return err
	}
	d.keys = keys
	return nil
}

// declaredFeatures lists one zero value of every feature type, for the
// docs of their keys (feature.Feature.Keys works on a zero value).
func declaredFeatures() []feature.Feature {
	return []feature.Feature{new(guard.Guard), new(restart.Restart), new(endpoints.Endpoints), new(jit.JIT), new(flowescape.FlowEscape)}
}

// stateSections are the features that keep a section of the state file,
// in the features' order.
func (d *Device) stateSections() []feature.StateSection {
	var out []feature.StateSection
	for _, f := range d.features {
		if s, ok := f.(feature.StateSection); ok {
			out = append(out, s)
		}
	}
	return out
}

// installBindHooks wires the features' receive and send hooks into the
// bind, building a per-type dispatch table once so the per-packet cost is
// one mask test and one slice walk.
func (d *Device) installBindHooks() {
	mask := conn.TypeMask(conn.MessageInitiation, conn.MessageResponse)
	var byType [8][]feature.Feature
	for _, f := range d.features {
		m := f.ReceiveTypes()
		mask |= m
		for t := 0; t < 8; t++ {
			if m&(1<<t) != 0 {
				byType[t] = append(byType[t], f)
			}
		}
	}
	features := d.features
	d.bind.SetHooks(&conn.Hooks{
		ReceiveTypes: mask,
		OnReceive: func(packet []byte, ep wgconn.Endpoint) conn.Verdict {
			switch packet[0] {
			case conn.MessageInitiation, conn.MessageResponse:
				d.stats.HandshakesReceived.Add(1)
			}
			for _, f := range byType[packet[0]&7] {
				if f.OnReceive(packet, ep) == conn.Hold {
					return conn.Hold
				}
			}
			return conn.Pass
		},
		OnSend: func(bufs [][]byte, ep wgconn.Endpoint) {
			d.sawSent(bufs, ep)
			for _, f := range features {
				f.OnSend(bufs, ep)
			}
		},
	})
}

// sawSent counts the handshake messages the device sends and learns
// known sources from them: a peer it initiates to or answers. Upstream
// sends each handshake message alone; data goes in batches that need no
// look.
func (d *Device) sawSent(bufs [][]byte, ep wgconn.Endpoint) {
	if len(bufs) != 1 {
		return
	}
	switch conn.MessageType(bufs[0]) {
	case conn.MessageInitiation:
		d.stats.InitiationsSent.Add(1)
		d.stats.HandshakesSent.Add(1)
	case conn.MessageResponse:
		d.stats.HandshakesSent.Add(1)
	default:
		return
	}
	if src := conn.DstAddrPort(ep); src.IsValid() {
		d.sources.Seen(src, time.Now())
	}
}

// expireSources forgets old known sources once a minute.
func (d *Device) expireSources() {
	tick := time.NewTicker(time.Minute)
	defer tick.Stop()
	for {
		select {
		case now := <-tick.C:
			d.sources.Expire(now)
		case <-d.done:
			return
		}
	}
}
