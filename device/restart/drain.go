package restart

import "errors"

// Drain prepares the device to be replaced, for a planned restart or
// before a load balancer moves its traffic away:
//
//  1. every peer's current keypairs expire, so the next packet either side
//     sends to the other starts a fresh handshake (upstream's 5 s limit on
//     initiations is reset for this; see the note below);
//  2. the device reports draining (Host.SetDraining: readiness probes
//     answer 503, `wghooks_draining=true` in a UAPI get) until Undrain;
//  3. the state file is written, and the fleet's store when the provider
//     keeps one, so the next process (or machine) starts from what this
//     one learned.
//
// Sessions still decrypt what arrives on them until each side has
// renewed. It returns the state file's and the store's write errors, if
// any; keys are expired and the device marked draining regardless.
//
// Note: a responder drops an initiation arriving within 20 ms of the
// previous one from the same peer, so draining right after a handshake
// costs that peer one 5 s retry.
func (r *Restart) Drain() error {
	n := 0
	up := r.host.Upstream()
	for _, pk := range r.host.PeerKeys() {
		if p := up.LookupPeer(pk); p != nil {
			p.ExpireCurrentKeypairs()
			n++
		}
	}
	r.host.SetDraining(true)
	r.c.Drains.Add(1)
	r.host.Verbosef("drained: keypairs of %d peers expired; reporting draining", n)
	return errors.Join(r.saveState("drain"), r.saveStoreOnExit("drain"))
}

// Undrain stops reporting draining, when a planned restart is called off.
// Peers whose keys a drain expired simply renew them.
func (r *Restart) Undrain() {
	if r.host.SetDraining(false) {
		r.host.Verbosef("no longer draining")
	}
}
