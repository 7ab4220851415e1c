package feature

import (
	"encoding/json"
	"time"

	wgconn "golang.zx2c4.com/wireguard/conn"

	"github.com/wghooks/wghooks/conn"
	"github.com/wghooks/wghooks/uapi"
)

// Feature is one lifecycle extension of the device. The core calls every
// feature at the same points, in the order it lists them (device/features.go
// says why that order):
//
//	BeforeUp    with the lifecycle lock held, before upstream's Up
//	AfterUp     with the lifecycle lock held, after upstream's Up succeeded
//	Configured  after each configuration transaction, on the configuring
//	            goroutine, never with the lifecycle lock held
//	Close       once, from Close, before the upstream device closes
//
// ReceiveTypes selects (a conn.TypeMask) the message types OnReceive sees,
// under the contract of conn.Hooks.OnReceive; OnSend sees every outgoing
// batch under the contract of conn.Hooks.OnSend. A feature starts its
// goroutines from its constructor, with Host.Go.
type Feature interface {
	// Name names the feature in logs and is the Origin of its own
	// configuration changes.
	Name() string

	BeforeUp()
	AfterUp()
	Configured(c Change)
	Close()

	ReceiveTypes() uint8
	OnReceive(packet []byte, ep wgconn.Endpoint) conn.Verdict
	OnSend(bufs [][]byte, ep wgconn.Endpoint)

	// Keys are the UAPI extension keys the feature handles. Keys must work
	// on a zero value of the feature (its closures may need a built one):
	// the core calls it on one to list the keys' docs.
	Keys() []ExtKey

	// GetLines are the feature's device-level lines in a get reply;
	// PeerGetLines its lines in one peer's section.
	GetLines() []uapi.Line
	PeerGetLines(pk Key) []uapi.Line
}

// Base gives a feature the methods it does not need, doing nothing.
type Base struct{}

func (Base) BeforeUp()                                      {}
func (Base) AfterUp()                                       {}
func (Base) Configured(Change)                              {}
func (Base) Close()                                         {}
func (Base) ReceiveTypes() uint8                            { return 0 }
func (Base) OnReceive([]byte, wgconn.Endpoint) conn.Verdict { return conn.Pass }
func (Base) OnSend([][]byte, wgconn.Endpoint)               {}
func (Base) Keys() []ExtKey                                 { return nil }
func (Base) GetLines() []uapi.Line                          { return nil }
func (Base) PeerGetLines(Key) []uapi.Line                   { return nil }

// Change is one configuration transaction as applied.
type Change struct {
	// Set is the transaction, validated whole.
	Set *uapi.Set
	// Origin is "" for the operator (UAPI, IpcSet, Configure of the
	// library) and a feature's Name for that feature's own changes.
	Origin string
	// Err is upstream's error when part of the transaction failed; the
	// peers it touched are reconciled with upstream regardless.
	Err error
}

// ByOperator reports whether the operator made the change.
func (c Change) ByOperator() bool { return c.Origin == "" }

// ExtKey is one UAPI extension key. Validate runs when the transaction is
// read, before anything applies; Apply runs after upstream applied the
// transaction's standard keys, in transaction order.
type ExtKey struct {
	Name string
	// Peer is true for a key that follows a public_key line.
	Peer bool
	// Doc is one line for `wghooks keys`.
	Doc      string
	Validate func(value string) error
	// ApplyDevice (device keys) or ApplyPeer (peer keys) applies it.
	ApplyDevice func(value string) error
	ApplyPeer   func(pk Key, value string) error
}

// StateSection is implemented by a feature that keeps its own section of
// the state file (a feature's Name is its section's name).
type StateSection interface {
	Feature
	// SaveState returns the section to write, or nil for none. v is the
	// device's view at the time of writing, with the last handshake the
	// state file knew for a peer silent since it was restored (Carry).
	SaveState(v *View, now time.Time) (json.RawMessage, error)
	// RestoreState applies the section written by the previous process,
	// once, before the first Up that can use it. It must return quickly:
	// long work goes to a goroutine of its own.
	RestoreState(section json.RawMessage, r Restore)
}

// Restore is what RestoreState knows of the state file being applied.
type Restore struct {
	// View is the device's view when the file is applied.
	View *View
	// Written is when the previous process wrote the file.
	Written time.Time
	// MaxAge is the age past which an entry is too old to restore.
	MaxAge time.Duration
	// RecentInitiation reports whether addr (normalized) sent this device
	// a handshake initiation within d: initiating to it would cross.
	RecentInitiation func(addr string, d time.Duration) bool
	// Carry tells the state file that pk was restored at endpoint: while
	// it stays silent there, the next file (its peers and every section)
	// keeps lastHandshake for it.
	Carry func(pk Key, endpoint string, lastHandshake time.Time)
}
