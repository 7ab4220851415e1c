package device

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	wgdevice "golang.zx2c4.com/wireguard/device"
)

// The state file carries what a process learned to the next one:
//
//	{
//	  "version": 1,
//	  "public_key": "<this device's public key, base64>",
//	  "written": "2026-05-22T21:04:24.5Z",
//	  "peers": [
//	    {"public_key": "...", "endpoint": "203.0.113.7:41641",
//	     "configured_endpoint": "", "last_handshake": "2026-05-22T21:03:58Z"},
//	    {"public_key": "...", "endpoint": "198.51.100.4:51820",
//	     "last_handshake": "2026-05-22T21:04:01Z", "jit": true}
//	  ]
//	}
//
// It is written atomically (temporary file in the same directory, fsync,
// rename, fsync of the directory) with mode 0600, on drain, on Close and
// every StateInterval. It is applied once, before the first Up that finds
// peers configured, and only to those peers: it never adds a peer nor
// touches keys or allowed IPs. An entry is applied when the peer has no
// session in this process yet, the old process had one (last_handshake),
// and the operator has not changed the peer's configured endpoint since.
// A file that is missing, stale (older than StateMaxAge), written for
// another private key or unreadable is reported in the log and ignored;
// an unusable file is kept beside as FILE.rejected.
//
// Entries marked "jit" are just-in-time peers the old process had
// installed. They are not configured in the new one, so the rule above
// skips them; restore_jit.go asks the provider about them again and
// reinstalls the ones it still knows. Files written before that flag
// existed load as before (every entry static).

// stateVersion is the version this code writes and reads.
const stateVersion = 1

// maxStateFileSize bounds what is read (65,536 peers take ~15 MB).
const maxStateFileSize = 64 << 20

type stateFile struct {
	Version   int         `json:"version"`
	PublicKey string      `json:"public_key"`
	Written   time.Time   `json:"written"`
	Peers     []statePeer `json:"peers"`
}

type statePeer struct {
	PublicKey          string    `json:"public_key"`
	Endpoint           string    `json:"endpoint"`
	ConfiguredEndpoint string    `json:"configured_endpoint,omitempty"`
	LastHandshake      time.Time `json:"last_handshake,omitzero"`
	// JIT marks a just-in-time peer (restore_jit.go). Older files have
	// no such field: false.
	JIT bool `json:"jit,omitempty"`
}

// parseState decodes and validates a state file. It is pure.
func parseState(data []byte) (*stateFile, error) {
	var f stateFile
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("failed to parse state file: %w", err)
	}
	if dec.More() {
		return nil, fmt.Errorf("failed to parse state file: trailing data after the JSON object")
	}
	if f.Version != stateVersion {
		return nil, fmt.Errorf("failed to parse state file: version %d, this wghooks reads version %d", f.Version, stateVersion)
	}
	if _, err := decodeKey(f.PublicKey); err != nil {
		return nil, fmt.Errorf("failed to parse state file: public_key %q: %w", f.PublicKey, err)
	}
	for i, p := range f.Peers {
		if _, err := decodeKey(p.PublicKey); err != nil {
			return nil, fmt.Errorf("failed to parse state file: peer %d: public_key %q: %w", i, p.PublicKey, err)
		}
		if _, err := netip.ParseAddrPort(p.Endpoint); err != nil {
			return nil, fmt.Errorf("failed to parse state file: peer %d: endpoint %q: %w", i, p.Endpoint, err)
		}
		if p.ConfiguredEndpoint != "" {
			if _, err := netip.ParseAddrPort(p.ConfiguredEndpoint); err != nil {
				return nil, fmt.Errorf("failed to parse state file: peer %d: configured_endpoint %q: %w", i, p.ConfiguredEndpoint, err)
			}
		}
	}
	return &f, nil
}

func decodeKey(s string) (wgdevice.NoisePublicKey, error) {
	var k wgdevice.NoisePublicKey
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return k, err
	}
	if len(b) != len(k) {
		return k, fmt.Errorf("%d bytes, want %d", len(b), len(k))
	}
	copy(k[:], b)
	return k, nil
}

func encodeKey(k wgdevice.NoisePublicKey) string { return base64.StdEncoding.EncodeToString(k[:]) }

// readStateFile reads and parses path. A missing file is fs.ErrNotExist.
func readStateFile(path string) (*stateFile, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	if st, err := fh.Stat(); err != nil {
		return nil, fmt.Errorf("failed to read state file %q: %w", path, err)
	} else if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("failed to read state file %q: not a regular file", path)
	}
	data, err := io.ReadAll(io.LimitReader(fh, maxStateFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("failed to read state file %q: %w", path, err)
	}
	if len(data) > maxStateFileSize {
		return nil, fmt.Errorf("failed to read state file %q: larger than %d bytes", path, maxStateFileSize)
	}
	return parseState(data)
}

// removeStaleTemps deletes temporary files that a writer killed between
// creating and renaming them left beside path. Only ones older than a
// minute go, so a write under way in this process is never touched.
func removeStaleTemps(path string) {
	matches, _ := filepath.Glob(filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*"))
	for _, m := range matches {
		if fi, err := os.Stat(m); err == nil && time.Since(fi.ModTime()) > time.Minute {
			os.Remove(m)
		}
	}
}

// writeStateFile replaces path atomically with f, mode 0600. A crash at
// any point leaves either the old file or the new one.
func writeStateFile(path string, f *stateFile) error {
	data, err := json.MarshalIndent(f, "", "\t")
	if err != nil {
		return err
	}
	data = append(data, '\n')
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	done := false
	defer func() {
		if !done {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err := tmp.Chmod(0o600); err != nil {
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		return err
	}
	if err := tmp.Sync(); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	done = true
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// restoreItem is one endpoint to give back to a peer.
type restoreItem struct {
	pk            wgdevice.NoisePublicKey
	endpoint      string
	lastHandshake time.Time
}

// planRestore decides which entries of f apply to the device as it is
// now. configured returns a peer's configured endpoint in this process.
// It is pure; an error means the whole file is to be ignored.
func planRestore(f *stateFile, v deviceView, configured func(wgdevice.NoisePublicKey) string, now time.Time, maxAge time.Duration) ([]restoreItem, error) {
	own, ok := v.publicKey()
	if !ok {
		return nil, fmt.Errorf("the device has no private key")
	}
	if fk, _ := decodeKey(f.PublicKey); fk != own {
		return nil, fmt.Errorf("written for another private key (public key %s, the device's is %s)", f.PublicKey, encodeKey(own))
	}
	if age := now.Sub(f.Written); age > maxAge {
		return nil, fmt.Errorf("stale: written %s ago, more than %s", age.Round(time.Second), maxAge)
	}
	current := make(map[wgdevice.NoisePublicKey]*peerView, len(v.peers))
	for i := range v.peers {
		current[v.peers[i].pk] = &v.peers[i]
	}
	var items []restoreItem
	for _, e := range f.Peers {
		pk, _ := decodeKey(e.PublicKey)
		p := current[pk]
		switch {
		case p == nil: // not configured here: never add a peer
		case !p.handshake.IsZero(): // this process knows better already
		case e.LastHandshake.IsZero(): // never reached at that address
		case normalizeEndpoint(e.ConfiguredEndpoint) != configured(pk): // the operator changed it
		case normalizeEndpoint(e.Endpoint) == p.endpoint: // nothing to do
		default:
			items = append(items, restoreItem{pk: pk, endpoint: normalizeEndpoint(e.Endpoint), lastHandshake: e.LastHandshake})
		}
	}
	return items, nil
}

// stateKeeper serializes writes of the state file and remembers what the
// restore carried over, so an entry survives a restart during which its
// peer stayed silent.
type stateKeeper struct {
	sync.Mutex
	carried map[wgdevice.NoisePublicKey]restoreItem
}

func (s *stateKeeper) init() { s.carried = make(map[wgdevice.NoisePublicKey]restoreItem) }

// restoreLocked reads the state file and applies it. Called with the
// startup lock held; it runs once per Device, as soon as the device has
// its private key and peers.
func (r *restart) restoreLocked() {
	path := r.cfg.StateFile
	removeStaleTemps(path)
	v, err := r.d.view()
	if err != nil {
		r.d.log.Errorf("failed to apply state file %q: %v", path, err)
		return
	}
	if _, ok := v.publicKey(); !ok {
		// Peers came before the private key: wait for it, the file can
		// only be checked against it.
		return
	}
	r.startup.restorePending = false
	f, err := readStateFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		r.d.log.Verbosef("no state file at %q: starting without saved endpoints", path)
		return
	}
	if err != nil {
		r.rejectStateFile(err)
		return
	}
	items, err := planRestore(f, v, r.configuredEndpoint, time.Now(), r.cfg.StateMaxAge)
	if err != nil {
		r.rejectStateFile(fmt.Errorf("ignoring state file %q: %w", path, err))
		return
	}
	var b strings.Builder
	for _, it := range items {
		fmt.Fprintf(&b, "public_key=%s\nupdate_only=true\nendpoint=%s\n", hex.EncodeToString(it.pk[:]), it.endpoint)
	}
	if b.Len() > 0 {
		if err := r.d.wg.IpcSet(b.String()); err != nil {
			r.d.log.Errorf("failed to apply state file %q: %v", path, err)
			return
		}
	}
	r.state.Lock()
	for _, it := range items {
		r.state.carried[it.pk] = it
		r.d.log.Verbosef("%s - endpoint %s restored from the state file (last handshake %s)", shortKey(it.pk), it.endpoint, it.lastHandshake.Format(time.RFC3339))
	}
	r.state.Unlock()
	r.d.log.Verbosef("state file %q (written %s ago): restored %d learned endpoints", path, time.Since(f.Written).Round(time.Millisecond), len(items))
	r.restoreJITLocked(f)
}

// rejectStateFile logs why the file is ignored and moves it aside, so the
// next write does not destroy what an operator may want to look at.
func (r *restart) rejectStateFile(err error) {
	path := r.cfg.StateFile
	kept := path + ".rejected"
	if rerr := os.Rename(path, kept); rerr != nil {
		r.d.log.Errorf("%v; starting without saved endpoints", err)
		return
	}
	r.d.log.Errorf("%v; starting without saved endpoints (file kept as %q)", err, kept)
}

// SaveState writes the state file now. Without a StateFile it does
// nothing. Before the device has been up with peers there is nothing
// learned to save, and the previous process's file is left alone.
func (d *Device) SaveState() error { return d.restart.saveState("on demand") }

func (r *restart) saveState(why string) error {
	if r.cfg.StateFile == "" {
		return nil
	}
	s := &r.startup
	s.Lock()
	if !s.everUp {
		s.Unlock()
		return nil
	}
	if s.restorePending {
		if r.d.peers.len() == 0 {
			s.Unlock()
			return nil
		}
		r.restoreLocked()
	}
	s.Unlock()
	return r.writeState(why)
}

func (r *restart) writeState(why string) error {
	path := r.cfg.StateFile
	r.state.Lock()
	defer r.state.Unlock()
	select {
	case <-r.d.wg.Wait():
		return nil // upstream closed: it no longer knows anything
	default:
	}
	v, err := r.d.view()
	if err != nil {
		return fmt.Errorf("failed to write state file %q: %w", path, err)
	}
	f := r.buildStateLocked(v, time.Now())
	if f == nil {
		r.d.log.Verbosef("state file %q not written (%s): no peer has an endpoint", path, why)
		return nil
	}
	if err := writeStateFile(path, f); err != nil {
		return fmt.Errorf("failed to write state file %q: %w", path, err)
	}
	r.d.log.Verbosef("state file %q written (%s): %d peers", path, why, len(f.Peers))
	return nil
}

// buildStateLocked turns the device's view into a state file, or nil when
// it would hold nothing (the previous file is then left as it is).
func (r *restart) buildStateLocked(v deviceView, now time.Time) *stateFile {
	own, ok := v.publicKey()
	if !ok {
		return nil
	}
	f := &stateFile{Version: stateVersion, PublicKey: encodeKey(own), Written: now.UTC()}
	for _, p := range v.peers {
		if p.endpoint == "" {
			continue
		}
		hs := p.handshake
		if c, ok := r.state.carried[p.pk]; ok && hs.IsZero() && c.endpoint == p.endpoint {
			hs = c.lastHandshake
		}
		e := statePeer{
			PublicKey:          encodeKey(p.pk),
			Endpoint:           p.endpoint,
			ConfiguredEndpoint: r.configuredEndpoint(p.pk),
			JIT:                r.d.jit.isJIT(p.pk),
		}
		if e.JIT {
			e.ConfiguredEndpoint = "" // the provider's, not the operator's
		}
		if !hs.IsZero() {
			e.LastHandshake = hs.UTC()
		}
		f.Peers = append(f.Peers, e)
	}
	if len(f.Peers) == 0 {
		return nil
	}
	sort.Slice(f.Peers, func(i, j int) bool { return f.Peers[i].PublicKey < f.Peers[j].PublicKey })
	return f
}

// stateLoop rewrites the state file every StateInterval while up.
func (r *restart) stateLoop() {
	r.everyWhileUp(r.cfg.StateInterval, func() {
		if err := r.saveState("periodic"); err != nil {
			r.d.log.Errorf("%v", err)
		}
	})
}
