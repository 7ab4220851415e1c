package restart

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/wghooks/wghooks/device/feature"
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
//	     "last_handshake": "2026-05-22T21:04:01Z"}
//	  ],
//	  "sections": {
//	    "jit": {"peers": [{"public_key": "...", "endpoint": "198.51.100.4:51820",
//	                       "last_handshake": "2026-05-22T21:04:01Z"}]}
//	  }
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
// "peers" lists every peer with an endpoint; configured_endpoint is the
// endpoint the operator last configured (a feature's own changes never
// set it). "sections" holds one opaque section per feature that keeps
// state of its own (feature.StateSection), under the feature's name: the
// core hands each feature its section at restore, and ignores a section
// no feature of this process claims. The just-in-time peers are in the
// "jit" section (device/jit/restore.go): they are not configured in the
// new process, so the rule above skips their "peers" entries.
//
// Compatibility: the previous version wrote no sections and flagged its
// just-in-time peers' entries "jit": true instead. A file without
// "sections" whose entries carry that flag is read as if it held a "jit"
// section listing those entries (public key, endpoint, last handshake),
// so a gateway upgraded across a restart brings its just-in-time peers
// back. The version stays 1: the previous version ignores "sections" (it
// only loses the just-in-time restore), and files without either load
// as before, every entry static.

// stateVersion is the version this code writes and reads.
const stateVersion = 1

// maxStateFileSize bounds what is read (65,536 peers take ~15 MB).
const maxStateFileSize = 64 << 20

type stateFile struct {
	Version   int         `json:"version"`
	PublicKey string      `json:"public_key"`
	Written   time.Time   `json:"written"`
	Peers     []statePeer `json:"peers"`
	// Sections are the features' own sections, by feature name.
	Sections map[string]json.RawMessage `json:"sections,omitempty"`
}

type statePeer struct {
	PublicKey          string    `json:"public_key"`
	Endpoint           string    `json:"endpoint"`
	ConfiguredEndpoint string    `json:"configured_endpoint,omitempty"`
	LastHandshake      time.Time `json:"last_handshake,omitzero"`
	// JIT is only read, from files of the previous version, which
	// flagged just-in-time peers so (see upgradeJITFlags); never written.
	JIT bool `json:"jit,omitempty"`
}

// upgradeJITFlags converts the entries a previous version flagged "jit"
// into a "jit" section, when the file has no sections of its own, and
// clears the flags. It is pure.
func upgradeJITFlags(f *stateFile) error {
	// The section's entries are statePeer's first fields: public key,
	// endpoint, last handshake (the others are empty, so omitted).
	var sec struct {
		Peers []statePeer `json:"peers"`
	}
	for i := range f.Peers {
		p := &f.Peers[i]
		if !p.JIT {
			continue
		}
		p.JIT = false
		sec.Peers = append(sec.Peers, statePeer{PublicKey: p.PublicKey, Endpoint: p.Endpoint, LastHandshake: p.LastHandshake})
	}
	if len(sec.Peers) == 0 || f.Sections != nil {
		return nil
	}
	raw, err := json.Marshal(&sec)
	if err != nil {
		return err
	}
	f.Sections = map[string]json.RawMessage{"jit": raw}
	return nil
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
	if _, err := feature.DecodeKey(f.PublicKey); err != nil {
		return nil, fmt.Errorf("failed to parse state file: public_key %q: %w", f.PublicKey, err)
	}
	for i, p := range f.Peers {
		if _, err := feature.DecodeKey(p.PublicKey); err != nil {
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
	if err := upgradeJITFlags(&f); err != nil {
		return nil, fmt.Errorf("failed to parse state file: %w", err)
	}
	return &f, nil
}

// errUnsafeStateDir marks a state file refused for its directory, which
// others could have written it into: the file itself is left in place.
var errUnsafeStateDir = errors.New("writable by group or others")

// readStateFile reads and parses path. A missing file is fs.ErrNotExist.
// It opens path without following a symlink and without blocking (a FIFO
// would hang the start), requires a regular file, and refuses one in a
// directory that group or others can write to.
func readStateFile(path string) (*stateFile, error) {
	fh, err := os.OpenFile(path, stateOpenFlags, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	if err != nil {
		return nil, fmt.Errorf("failed to read state file %q: %w", path, err)
	}
	defer fh.Close()
	if st, err := fh.Stat(); err != nil {
		return nil, fmt.Errorf("failed to read state file %q: %w", path, err)
	} else if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("failed to read state file %q: not a regular file (%v)", path, st.Mode().Type())
	}
	dir := filepath.Dir(path)
	if st, err := os.Stat(dir); err != nil {
		return nil, fmt.Errorf("failed to read state file %q: %w", path, err)
	} else if writableByOthers(st.Mode()) {
		return nil, fmt.Errorf("failed to read state file %q: its directory %q (mode %v) is %w", path, dir, st.Mode().Perm(), errUnsafeStateDir)
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
	pk            feature.Key
	endpoint      string
	lastHandshake time.Time
}

// planRestore decides which entries of f apply to the device as it is
// now. configured returns a peer's configured endpoint in this process.
// It is pure; an error means the whole file is to be ignored.
func planRestore(f *stateFile, v *feature.View, configured func(feature.Key) string, now time.Time, maxAge time.Duration) ([]restoreItem, error) {
	own, ok := v.PublicKey()
	if !ok {
		return nil, fmt.Errorf("the device has no private key")
	}
	if err := keyMismatch(f, own); err != nil {
		return nil, err
	}
	if age := now.Sub(f.Written); age > maxAge {
		return nil, fmt.Errorf("stale: written %s ago, more than %s", age.Round(time.Second), maxAge)
	}
	current := make(map[feature.Key]*feature.PeerView, len(v.Peers))
	for i := range v.Peers {
		current[v.Peers[i].PublicKey] = &v.Peers[i]
	}
	var items []restoreItem
	for _, e := range f.Peers {
		pk, _ := feature.DecodeKey(e.PublicKey)
		p := current[pk]
		switch {
		case p == nil: // not configured here: never add a peer
		case !p.Handshake.IsZero(): // this process knows better already
		case e.LastHandshake.IsZero(): // never reached at that address
		case feature.NormalizeEndpoint(e.ConfiguredEndpoint) != configured(pk): // the operator changed it
		case feature.NormalizeEndpoint(e.Endpoint) == p.Endpoint: // nothing to do
		default:
			items = append(items, restoreItem{pk: pk, endpoint: feature.NormalizeEndpoint(e.Endpoint), lastHandshake: e.LastHandshake})
		}
	}
	return items, nil
}

// supersededBy says why f, this machine's own state file, counts as
// missing when a takeover is possible, or "" when it is to be used: it
// was written under another private key (a machine restored from
// another gateway's image), or before the takeover window (a machine
// restored from an old image, or down that long): what it knows is
// older than what the fleet's store may hold. It is pure.
func supersededBy(f *stateFile, own feature.Key, now time.Time, window time.Duration) string {
	if err := keyMismatch(f, own); err != nil {
		return "was " + err.Error()
	}
	if age := now.Sub(f.Written); age > window {
		return fmt.Sprintf("was written %s ago, more than the takeover window %v", age.Round(time.Second), window)
	}
	return ""
}

// keyMismatch says why f, if written under another public key than own,
// is not this device's; nil when it is.
func keyMismatch(f *stateFile, own feature.Key) error {
	if fk, _ := feature.DecodeKey(f.PublicKey); fk != own {
		return fmt.Errorf("written for another private key (public key %s, the device's is %s)", f.PublicKey, feature.EncodeKey(own))
	}
	return nil
}

// stateKeeper serializes writes of the state file and remembers what the
// restore carried over, so an entry survives a restart during which its
// peer stayed silent.
type stateKeeper struct {
	sync.Mutex
	carried map[feature.Key]restoreItem
}

func (s *stateKeeper) init() { s.carried = make(map[feature.Key]restoreItem) }

// restoreLocked reads the state file and applies it; without one, with
// Takeover, it applies the fleet's recent state instead (fleet.go).
// Called with the startup lock held; it runs once per Device, as soon as
// the device has its private key and peers.
func (r *Restart) restoreLocked() {
	path := r.cfg.StateFile
	if path != "" {
		removeStaleTemps(path)
	}
	v, err := r.host.View()
	if err != nil {
		r.host.Errorf("failed to apply state file %q: %v", path, err)
		return
	}
	own, ok := v.PublicKey()
	if !ok {
		// Peers came before the private key: wait for it, the file can
		// only be checked against it.
		return
	}
	r.startup.restorePending = false
	src, maxAge := fmt.Sprintf("state file %q", path), r.cfg.StateMaxAge
	var f *stateFile
	if path != "" {
		f, err = readStateFile(path)
	}
	missing := path == "" || errors.Is(err, fs.ErrNotExist)
	var superseded string
	if !missing && err == nil && r.takeoverEnabled() {
		superseded = supersededBy(f, own, time.Now(), r.cfg.TakeoverWindow)
	}
	if superseded != "" {
		r.host.Verbosef("state file %q %s: taking over the fleet's state as if there were none", path, superseded)
	}
	if missing || superseded != "" {
		tf := r.takeoverStateLocked(own, time.Now())
		switch {
		case tf != nil:
			if superseded != "" && keyMismatch(f, own) != nil {
				// Another key's file is kept aside as a rejected one;
				// the reason is logged above.
				r.keepAside()
			}
			f, src, maxAge, err = tf, takeoverSource, r.cfg.TakeoverWindow, nil
		case missing:
			if path != "" {
				r.host.Verbosef("no state file at %q: starting without saved endpoints", path)
			}
			return
		}
		// A superseded file with nothing to take over is applied under
		// its own rules, as without Takeover.
	}
	if errors.Is(err, errUnsafeStateDir) {
		r.host.Errorf("%v; starting without saved endpoints", err)
		return
	}
	if err != nil {
		r.rejectStateFile(err)
		return
	}
	items, err := planRestore(f, &v, r.configuredEndpoint, time.Now(), maxAge)
	if err != nil {
		r.rejectStateFile(fmt.Errorf("ignoring state file %q: %w", path, err))
		return
	}
	var c feature.Config
	for _, it := range items {
		ap, _ := netip.ParseAddrPort(it.endpoint) // validated by parseState
		c.Peers = append(c.Peers, feature.PeerConfig{PublicKey: it.pk, UpdateOnly: true, Endpoint: ap})
	}
	// Through the core, so every feature sees the change (origin
	// "restart"); the restart's own Configured ignores it, as the startup
	// lock is held here.
	if err := r.host.Configure("restart", c); err != nil {
		r.host.Errorf("failed to apply %s: %v", src, err)
		return
	}
	r.state.Lock()
	for _, it := range items {
		r.state.carried[it.pk] = it
		r.host.Verbosef("%s - endpoint %s restored from %s (last handshake %s)", feature.ShortKey(it.pk), it.endpoint, src, it.lastHandshake.Format(time.RFC3339))
	}
	r.state.Unlock()
	if src != takeoverSource {
		src = fmt.Sprintf("%s (written %s ago)", src, time.Since(f.Written).Round(time.Millisecond))
	}
	r.host.Verbosef("%s: restored %d learned endpoints", src, len(items))
	r.restoreSectionsLocked(f, &v, maxAge)
}

// restoreSectionsLocked hands each feature that keeps a section of the
// state file its section from f. Called with the startup lock held; the
// features return at once.
func (r *Restart) restoreSectionsLocked(f *stateFile, v *feature.View, maxAge time.Duration) {
	rs := feature.Restore{
		View:             v,
		Written:          f.Written,
		MaxAge:           maxAge,
		RecentInitiation: r.recent.within,
		Carry: func(pk feature.Key, endpoint string, lastHandshake time.Time) {
			r.state.Lock()
			defer r.state.Unlock()
			r.state.carried[pk] = restoreItem{pk: pk, endpoint: endpoint, lastHandshake: lastHandshake}
		},
	}
	claimed := make(map[string]bool)
	for _, s := range r.sections() {
		name := s.Name()
		claimed[name] = true
		if raw, ok := f.Sections[name]; ok {
			s.RestoreState(raw, rs)
		}
	}
	for name := range f.Sections {
		if !claimed[name] {
			r.host.Verbosef("state file section %q ignored: no feature here keeps it", name)
		}
	}
}

// rejectStateFile logs why the file is ignored and moves it aside, so the
// next write does not destroy what an operator may want to look at.
func (r *Restart) rejectStateFile(err error) {
	kept, ok := r.keepAside()
	if !ok {
		r.host.Errorf("%v; starting without saved endpoints", err)
		return
	}
	r.host.Errorf("%v; starting without saved endpoints (file kept as %q)", err, kept)
}

// keepAside moves the state file to FILE.rejected, so the next write does
// not destroy it, and says where and whether it did.
func (r *Restart) keepAside() (string, bool) {
	kept := r.cfg.StateFile + ".rejected"
	return kept, os.Rename(r.cfg.StateFile, kept) == nil
}

// SaveState writes the state file now. Without a StateFile it does
// nothing. Before the device has been up with peers there is nothing
// learned to save, and the previous process's file is left alone.
func (r *Restart) SaveState() error { return r.saveState("on demand") }

func (r *Restart) saveState(why string) error {
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
		if r.host.PeerCount() == 0 {
			s.Unlock()
			return nil
		}
		r.restoreLocked()
	}
	s.Unlock()
	return r.writeState(why)
}

// liveView reads the device's view; live is false once upstream closed
// (it no longer knows anything worth saving).
func (r *Restart) liveView() (v feature.View, live bool, err error) {
	select {
	case <-r.host.Upstream().Wait():
		return v, false, nil
	default:
	}
	v, err = r.host.View()
	return v, true, err
}

func (r *Restart) writeState(why string) error {
	path := r.cfg.StateFile
	r.state.Lock()
	defer r.state.Unlock()
	v, live, err := r.liveView()
	if !live {
		return nil
	}
	if err != nil {
		return fmt.Errorf("failed to write state file %q: %w", path, err)
	}
	f := r.buildStateLocked(&v, time.Now())
	if f == nil {
		r.host.Verbosef("state file %q not written (%s): no peer has an endpoint", path, why)
		return nil
	}
	if err := writeStateFile(path, f); err != nil {
		return fmt.Errorf("failed to write state file %q: %w", path, err)
	}
	r.host.Verbosef("state file %q written (%s): %d peers", path, why, len(f.Peers))
	return nil
}

// withCarriedLocked returns v with, for each peer silent since a restore
// brought it back at its saved endpoint, the last handshake the previous
// file knew: what the peers list and every section write, so an entry
// survives a restart during which its peer stayed silent.
func (r *Restart) withCarriedLocked(v *feature.View) *feature.View {
	out := *v
	out.Peers = append([]feature.PeerView(nil), v.Peers...)
	for i := range out.Peers {
		p := &out.Peers[i]
		if c, ok := r.state.carried[p.PublicKey]; ok && p.Handshake.IsZero() && c.endpoint == p.Endpoint {
			p.Handshake = c.lastHandshake
		}
	}
	return &out
}

// buildStateLocked turns the device's view into a state file, or nil when
// it would hold nothing (the previous file is then left as it is).
func (r *Restart) buildStateLocked(v *feature.View, now time.Time) *stateFile {
	own, ok := v.PublicKey()
	if !ok {
		return nil
	}
	f := &stateFile{Version: stateVersion, PublicKey: feature.EncodeKey(own), Written: now.UTC()}
	v = r.withCarriedLocked(v)
	for _, p := range v.Peers {
		if p.Endpoint == "" {
			continue
		}
		hs := p.Handshake
		e := statePeer{
			PublicKey:          feature.EncodeKey(p.PublicKey),
			Endpoint:           p.Endpoint,
			ConfiguredEndpoint: r.configuredEndpoint(p.PublicKey), // the operator's only
		}
		if !hs.IsZero() {
			e.LastHandshake = hs.UTC()
		}
		f.Peers = append(f.Peers, e)
	}
	for _, s := range r.sections() {
		raw, err := s.SaveState(v, now)
		if err != nil {
			r.host.Errorf("state file section %q not written: %v", s.Name(), err)
			continue
		}
		if raw == nil {
			continue
		}
		if f.Sections == nil {
			f.Sections = make(map[string]json.RawMessage)
		}
		f.Sections[s.Name()] = raw
	}
	if len(f.Peers) == 0 && len(f.Sections) == 0 {
		return nil
	}
	sort.Slice(f.Peers, func(i, j int) bool { return f.Peers[i].PublicKey < f.Peers[j].PublicKey })
	return f
}

// stateLoop rewrites the state file every StateInterval while up.
func (r *Restart) stateLoop() {
	r.everyWhileUp(r.cfg.StateInterval, func() {
		if err := r.saveState("periodic"); err != nil {
			r.host.Errorf("%v", err)
		}
	})
}
