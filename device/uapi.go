package device

import (
	"bufio"
	"errors"
	"io"
	"strings"

	"github.com/wghooks/wghooks/device/feature"
	"github.com/wghooks/wghooks/uapi"
)

// IpcSet applies one set transaction given as text (with or without the
// final blank line).
func (d *Device) IpcSet(conf string) error {
	return d.IpcSetOperation(strings.NewReader(conf))
}

// IpcSetOperation reads one set transaction from r and applies it. The
// whole transaction is read and validated before any of it is applied: a
// malformed line, an unknown key or a bad value answers an error carrying
// an errno (uapi.Coded) and leaves the device as it was. Standard keys go
// to upstream; wghooks' extension keys are applied after them.
func (d *Device) IpcSetOperation(r io.Reader) error {
	br, ok := r.(*bufio.Reader)
	if !ok {
		br = bufio.NewReader(r)
	}
	lines, _, err := uapi.ReadTransaction(br)
	if err != nil {
		return d.ipcFailed(err)
	}
	return d.IpcSetLines(lines)
}

// IpcSetLines applies one set transaction already split into lines
// (without newlines or the final blank line), as the UAPI server has it,
// so a large transaction is held once rather than copied again.
func (d *Device) IpcSetLines(lines []string) error {
	set, err := uapi.ParseSet(lines, d.keys.parser)
	if err != nil {
		return d.ipcFailed(err)
	}
	return d.applySet(set, "")
}

// applySet applies a validated transaction: standard keys to upstream,
// then the extension keys; every feature then sees it (feature.Change),
// with origin "" for the operator or the name of the feature that made
// it through Host.Configure.
func (d *Device) applySet(set *uapi.Set, origin string) error {
	touched := make([]feature.Key, 0, len(set.Peers))
	for _, p := range set.Peers {
		touched = append(touched, p.PublicKey)
	}
	if set.ReplacePeers {
		touched = append(touched, d.peers.list()...)
	}

	err := d.wg.IpcSet(set.Standard())
	d.peers.reconcile(d.wg, touched)
	d.noteIdentity(set) // also on error: part of it may have applied
	if err == nil {
		d.noteStandardSet(set)
		if xerr := d.applyExtensions(set); xerr != nil {
			err = d.ipcFailed(xerr)
		}
	}
	// Upstream has already logged its own error; keep its errno for the
	// reply.
	change := feature.Change{Set: set, Origin: origin, Err: err}
	for _, f := range d.features {
		f.Configured(change)
	}
	return err
}

func (d *Device) ipcFailed(err error) error {
	d.log.Errorf("%v", err)
	var coded uapi.Coded
	if !errors.As(err, &coded) {
		return uapi.Errorf(uapi.ErrnoUnknown, "other UAPI error: %w", err)
	}
	return err
}

// IpcGet returns the device's configuration and state as a get reply
// (without errno), extension keys included.
func (d *Device) IpcGet() (string, error) {
	var b strings.Builder
	if err := d.IpcGetOperation(&b); err != nil {
		return "", err
	}
	return b.String(), nil
}

// IpcGetOperation writes the get reply: upstream's lines, then wghooks'
// extension lines for the device and for each peer. Standard keys carry
// only what upstream would put there, so `wg` and other clients that skip
// unknown keys keep working.
func (d *Device) IpcGetOperation(w io.Writer) error {
	var up strings.Builder
	if err := d.wg.IpcGetOperation(&up); err != nil {
		return err
	}
	out := d.withExtensionLines(up.String())
	if _, err := io.WriteString(w, out); err != nil {
		return uapi.Errorf(uapi.ErrnoIO, "failed to write output: %w", err)
	}
	return nil
}

// withExtensionLines inserts device extension lines before the first peer
// and each peer's extension lines at the end of its section.
func (d *Device) withExtensionLines(get string) string {
	devExt := d.deviceGetLines()
	var b strings.Builder
	b.Grow(len(get) + 64)
	var cur *feature.Key
	var pk feature.Key
	flushPeer := func() {
		if cur != nil {
			for _, l := range d.peerGetLines(*cur) {
				b.WriteString(l.String())
				b.WriteByte('\n')
			}
		}
	}
	devDone := false
	for _, line := range strings.SplitAfter(get, "\n") {
		if line == "" {
			continue
		}
		if strings.HasPrefix(line, "public_key=") {
			if !devDone {
				for _, l := range devExt {
					b.WriteString(l.String())
					b.WriteByte('\n')
				}
				devDone = true
			}
			flushPeer()
			if k, err := uapi.ParseKey(strings.TrimSpace(strings.TrimPrefix(line, "public_key="))); err == nil {
				pk = k
				cur = &pk
			} else {
				cur = nil
			}
		}
		b.WriteString(line)
	}
	if !devDone {
		for _, l := range devExt {
			b.WriteString(l.String())
			b.WriteByte('\n')
		}
	}
	flushPeer()
	return b.String()
}
