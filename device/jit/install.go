package jit

// Installing an answer through the host, and the mark that tells
// just-in-time peers from static ones.

import (
	"time"

	"github.com/wghooks/wghooks/device/feature"
	"github.com/wghooks/wghooks/hooks"
)

// installLooked installs key with the configuration its lookup returned
// (applyLooked), and counts the install.
func (j *JIT) installLooked(key feature.Key, cfg hooks.PeerConfig, lost string) bool {
	if !j.applyLooked(key, cfg, lost) {
		return false
	}
	j.c.PeersInstalled.Add(1)
	return true
}

// applyLooked applies a provider's answer for key (applyAnswer). A
// refusal or failure is reported (answerRefused) and false returned.
func (j *JIT) applyLooked(key feature.Key, cfg hooks.PeerConfig, lost string) bool {
	if err := j.applyAnswer(key, cfg); err != nil {
		j.answerRefused(key, err, lost)
		return false
	}
	return true
}

// applyAnswer installs or updates key with cfg, a provider's answer. It
// is the one path every answer takes (a first install, revalidation, the
// outbound side, a restart restore), so all follow the same rules: an
// answer for the key of a static peer is refused, and so is one whose
// allowed IPs overlap a static peer's; installing one more peer first
// evicts the least recently active if the cap is reached. A new peer's
// persistent keepalive is left to the caller (see provision); an
// installed one's is set with the rest.
func (j *JIT) applyAnswer(key feature.Key, cfg hooks.PeerConfig) error {
	return j.applyAnswers([]answer{{key, cfg}})[0]
}

// InstallConfig is the typed change that installs or updates key with a
// provider's answer cfg: its allowed IPs replace the peer's, its preshared
// key (all zero: none) and keepalive are set, and its endpoint when it
// has one. It is pure.
func InstallConfig(key feature.Key, cfg hooks.PeerConfig) feature.PeerConfig {
	psk := [32]byte(cfg.PresharedKey)
	keepalive := cfg.PersistentKeepalive
	pc := feature.PeerConfig{
		PublicKey:         key,
		Endpoint:          cfg.Endpoint,
		PresharedKey:      &psk,
		Keepalive:         &keepalive,
		ReplaceAllowedIPs: true,
		AllowedIPs:        cfg.AllowedIPs,
	}
	return pc
}

// mark makes pk a just-in-time peer (jit) or a static one.
func (j *JIT) mark(pk feature.Key, isJIT bool) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if !isJIT {
		delete(j.peers, pk)
		return
	}
	if _, ok := j.peers[pk]; ok || !j.host.HasPeer(pk) {
		return
	}
	now := time.Now()
	j.peers[pk] = &jitPeer{installed: now, lastActive: now, rx: -1, tx: -1}
}

func (j *JIT) isJIT(pk feature.Key) bool {
	j.mu.Lock()
	defer j.mu.Unlock()
	_, ok := j.peers[pk]
	return ok
}
