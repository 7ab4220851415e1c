package conn

// Handshake initiation decoding, pure: no sockets, no device, no clocks.
//
// A WireGuard initiation (Noise IKpsk2, first message) hides the
// initiator's identity. The responder recovers and authenticates it in
// three steps, each cheaper than the next is expensive:
//
//  1. mac1: a keyed BLAKE2s over the message, keyed by the responder's
//     public key. Anyone who knows that public key can compute it, so it
//     only filters noise.
//  2. es: one X25519 between the responder's static private key and the
//     initiator's ephemeral; the result opens the encrypted static key.
//     Still not proof: anyone can encrypt any public key to the responder.
//  3. ss: a second X25519, between the responder's static private key and
//     the static key just decrypted; the result opens the timestamp. Only
//     the holder of that static key's private half could have sealed it.
//
// Decode runs all three and returns the authenticated initiator.
// Replay protection (the timestamp must grow) is the caller's: this code
// holds no state across messages.

import (
	"crypto/ecdh"
	"encoding/binary"
	"errors"
	"fmt"

	"golang.org/x/crypto/blake2s"
	"golang.org/x/crypto/chacha20poly1305"
	"golang.org/x/crypto/curve25519"
	wgdevice "golang.zx2c4.com/wireguard/device"
	"golang.zx2c4.com/wireguard/tai64n"
)

// Offsets inside a handshake initiation.
const (
	initOffSender    = 4
	initOffEphemeral = 8
	initOffStatic    = initOffEphemeral + 32
	initOffTimestamp = initOffStatic + 32 + chacha20poly1305.Overhead
	initOffMAC1      = initOffTimestamp + tai64n.TimestampSize + chacha20poly1305.Overhead
	initOffMAC2      = initOffMAC1 + blake2s.Size128
)

// Decoding errors, matched with errors.Is.
var (
	ErrNotInitiation = errors.New("not a handshake initiation")
	ErrBadMAC1       = errors.New("bad mac1")
	ErrBadStatic     = errors.New("initiator static key does not decrypt")
	ErrBadTimestamp  = errors.New("timestamp does not authenticate")
)

// Initiation is what Decode learned from an authenticated initiation.
type Initiation struct {
	// Initiator is the initiator's static public key, authenticated.
	Initiator [32]byte
	// Sender is the initiator's session index (the response's receiver).
	Sender uint32
	// Timestamp is the initiator's TAI64N timestamp, which a responder
	// must see grow from one accepted initiation to the next.
	Timestamp tai64n.Timestamp
}

// Identity is a responder's static identity, prepared for decoding
// initiations addressed to it. It is safe for concurrent use.
type Identity struct {
	pub [32]byte
	// key is the private key for crypto/ecdh, made once: curve25519.X25519 makes
	// one per call, which derives the public key again (a second scalar
	// multiplication for every DH).
	key     *ecdh.PrivateKey
	hash0   [blake2s.Size]byte // mixHash(InitialHash, pub)
	checker wgdevice.CookieChecker
}

// NewIdentity prepares the responder identity with static private key
// priv (clamped as X25519 does).
func NewIdentity(priv [32]byte) (*Identity, error) {
	key, err := ecdh.X25519().NewPrivateKey(priv[:])
	if err != nil {
		return nil, fmt.Errorf("failed to derive public key: %w", err)
	}
	id := &Identity{key: key}
	copy(id.pub[:], key.PublicKey().Bytes())
	mixHash(&id.hash0, &wgdevice.InitialHash, id.pub[:])
	id.checker.Init(id.pub)
	return id, nil
}

// PublicKey returns the identity's static public key.
func (id *Identity) PublicKey() [32]byte { return id.pub }

// CheckMAC1 reports whether packet is an initiation-sized message carrying
// a valid mac1 for this identity. It costs one BLAKE2s over 116 bytes.
func (id *Identity) CheckMAC1(packet []byte) bool {
	if len(packet) != MessageInitiationSize || packet[0] != MessageInitiation {
		return false
	}
	return id.checker.CheckMAC1(packet)
}

// Decode checks mac1, decrypts the initiator's static key (es) and
// authenticates it by opening the timestamp (ss). It returns an error
// matching ErrNotInitiation, ErrBadMAC1, ErrBadStatic or ErrBadTimestamp
// when the packet fails the corresponding step. packet is only read.
func (id *Identity) Decode(packet []byte) (Initiation, error) {
	o, err := id.Open(packet)
	if err != nil {
		return Initiation{}, err
	}
	return o.Authenticate()
}

// Opened is an initiation whose static key is decrypted (es) but not yet
// authenticated (ss): anyone can encrypt any key to the responder, so
// Initiator is only a claim until Authenticate.
type Opened struct {
	// Initiator is the claimed initiator's static public key.
	Initiator [32]byte
	// Sender is the initiator's session index.
	Sender uint32

	id        *Identity
	hash      [blake2s.Size]byte
	chainKey  [blake2s.Size]byte
	timestamp [tai64n.TimestampSize + chacha20poly1305.Overhead]byte
}

// Open is Decode's first half: mac1 and es, one X25519. A caller that only
// needs the claimed key (to pass the packet to a device that holds it and
// authenticates it itself) stops here.
func (id *Identity) Open(packet []byte) (*Opened, error) {
	if len(packet) != MessageInitiationSize || binary.LittleEndian.Uint32(packet) != MessageInitiation {
		return nil, ErrNotInitiation
	}
	if !id.checker.CheckMAC1(packet) {
		return nil, ErrBadMAC1
	}
	o := &Opened{id: id, Sender: binary.LittleEndian.Uint32(packet[initOffSender:])}
	ephemeral := packet[initOffEphemeral:initOffStatic]
	static := packet[initOffStatic:initOffTimestamp]
	copy(o.timestamp[:], packet[initOffTimestamp:initOffMAC1])

	var key [chacha20poly1305.KeySize]byte
	mixHash(&o.hash, &id.hash0, ephemeral)
	wgdevice.KDF1(&o.chainKey, wgdevice.InitialChainKey[:], ephemeral)

	// es: decrypt the initiator's static key.
	es, err := id.dh(ephemeral)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadStatic, err)
	}
	wgdevice.KDF2(&o.chainKey, &key, o.chainKey[:], es)
	aead, _ := chacha20poly1305.New(key[:])
	var zeroNonce [chacha20poly1305.NonceSize]byte
	if _, err := aead.Open(o.Initiator[:0], zeroNonce[:], static, o.hash[:]); err != nil {
		return nil, ErrBadStatic
	}
	mixHash(&o.hash, &o.hash, static)
	return o, nil
}

// Authenticate is Decode's second half: ss, one X25519, opens the
// timestamp, which only the holder of Initiator's private key can seal.
func (o *Opened) Authenticate() (Initiation, error) {
	out := Initiation{Initiator: o.Initiator, Sender: o.Sender}
	ss, err := o.id.dh(o.Initiator[:])
	if err != nil {
		return Initiation{}, fmt.Errorf("%w: %v", ErrBadTimestamp, err)
	}
	var chainKey [blake2s.Size]byte
	var key [chacha20poly1305.KeySize]byte
	wgdevice.KDF2(&chainKey, &key, o.chainKey[:], ss)
	aead, _ := chacha20poly1305.New(key[:])
	var zeroNonce [chacha20poly1305.NonceSize]byte
	if _, err := aead.Open(out.Timestamp[:0], zeroNonce[:], o.timestamp[:], o.hash[:]); err != nil {
		return Initiation{}, ErrBadTimestamp
	}
	return out, nil
}

// dh is X25519 of the identity's private key and point; like
// curve25519.X25519 it refuses a low-order point (an all-zero result).
func (id *Identity) dh(point []byte) ([]byte, error) {
	pub, err := ecdh.X25519().NewPublicKey(point)
	if err != nil {
		return nil, err
	}
	return id.key.ECDH(pub)
}

// InitiationSender returns the sender index of an initiation-sized packet.
func InitiationSender(packet []byte) uint32 {
	return binary.LittleEndian.Uint32(packet[initOffSender:])
}

// InitiationMAC1 returns the mac1 of an initiation-sized packet: a keyed
// hash over everything before it, so two initiations share it only if
// they are copies of each other.
func InitiationMAC1(packet []byte) [blake2s.Size128]byte {
	return [blake2s.Size128]byte(packet[initOffMAC1:initOffMAC2])
}

// ResponseReceiver returns the receiver index of a handshake response: the
// sender index of the initiation it answers.
func ResponseReceiver(packet []byte) (uint32, bool) {
	if len(packet) != MessageResponseSize || packet[0] != MessageResponse {
		return 0, false
	}
	return binary.LittleEndian.Uint32(packet[8:]), true
}

// SealInitiation builds the initiation that the holder of initiatorPriv
// would send to responderPub, with the given ephemeral private key, sender
// index and timestamp, and a valid mac1 (mac2 zero). It exists for tests,
// fuzzing and benchmarks: a real initiator is the upstream device.
func SealInitiation(initiatorPriv, responderPub, ephemeralPriv [32]byte, sender uint32, ts tai64n.Timestamp) ([]byte, error) {
	initiatorPub, err := curve25519.X25519(initiatorPriv[:], curve25519.Basepoint)
	if err != nil {
		return nil, fmt.Errorf("failed to derive initiator public key: %w", err)
	}
	return SealInitiationClaiming([32]byte(initiatorPub), initiatorPriv, responderPub, ephemeralPriv, sender, ts)
}

// SealInitiationClaiming is SealInitiation with the static public key the
// message claims given separately from the private key that seals the
// timestamp: with a claimed key that is not initiatorPriv's, it builds
// the impersonation a forger without the claimed key's private half could
// send (valid mac1, decryptable static, timestamp that does not
// authenticate). For tests.
func SealInitiationClaiming(claimedPub, initiatorPriv, responderPub, ephemeralPriv [32]byte, sender uint32, ts tai64n.Timestamp) ([]byte, error) {
	s, err := NewSealer(claimedPub, initiatorPriv, responderPub, ephemeralPriv)
	if err != nil {
		return nil, err
	}
	return s.Seal(sender, ts), nil
}

// Sealer builds initiations from one initiator to one responder, all with
// the same ephemeral key: everything but the sender index, the timestamp
// and the MACs is then fixed, so Seal costs no Diffie-Hellman. Reusing an
// ephemeral key gives up forward secrecy: Sealer is for tests and
// benchmarks that need many initiations, never for real traffic.
type Sealer struct {
	prefix [initOffTimestamp]byte
	tsKey  [chacha20poly1305.KeySize]byte
	hash   [blake2s.Size]byte
	gen    wgdevice.CookieGenerator
}

// NewSealer prepares initiations claiming claimedPub, sealed with
// initiatorPriv and ephemeralPriv, to responderPub.
func NewSealer(claimedPub, initiatorPriv, responderPub, ephemeralPriv [32]byte) (*Sealer, error) {
	ephemeralPub, err := curve25519.X25519(ephemeralPriv[:], curve25519.Basepoint)
	if err != nil {
		return nil, fmt.Errorf("failed to derive ephemeral public key: %w", err)
	}
	s := &Sealer{}
	binary.LittleEndian.PutUint32(s.prefix[:], MessageInitiation)
	copy(s.prefix[initOffEphemeral:], ephemeralPub)

	var chainKey [blake2s.Size]byte
	var key [chacha20poly1305.KeySize]byte
	var zeroNonce [chacha20poly1305.NonceSize]byte
	mixHash(&s.hash, &wgdevice.InitialHash, responderPub[:])
	mixHash(&s.hash, &s.hash, ephemeralPub)
	wgdevice.KDF1(&chainKey, wgdevice.InitialChainKey[:], ephemeralPub)

	es, err := curve25519.X25519(ephemeralPriv[:], responderPub[:])
	if err != nil {
		return nil, fmt.Errorf("failed to compute es: %w", err)
	}
	wgdevice.KDF2(&chainKey, &key, chainKey[:], es)
	aead, _ := chacha20poly1305.New(key[:])
	aead.Seal(s.prefix[initOffStatic:initOffStatic], zeroNonce[:], claimedPub[:], s.hash[:])
	mixHash(&s.hash, &s.hash, s.prefix[initOffStatic:initOffTimestamp])

	ss, err := curve25519.X25519(initiatorPriv[:], responderPub[:])
	if err != nil {
		return nil, fmt.Errorf("failed to compute ss: %w", err)
	}
	wgdevice.KDF2(&chainKey, &s.tsKey, chainKey[:], ss)
	s.gen.Init(responderPub)
	return s, nil
}

// Seal returns one initiation with the given sender index and timestamp
// and a valid mac1 (mac2 zero). It is safe for concurrent use.
func (s *Sealer) Seal(sender uint32, ts tai64n.Timestamp) []byte {
	msg := make([]byte, MessageInitiationSize)
	copy(msg, s.prefix[:])
	binary.LittleEndian.PutUint32(msg[initOffSender:], sender)
	var zeroNonce [chacha20poly1305.NonceSize]byte
	aead, _ := chacha20poly1305.New(s.tsKey[:])
	aead.Seal(msg[initOffTimestamp:initOffTimestamp], zeroNonce[:], ts[:], s.hash[:])
	s.gen.AddMacs(msg)
	return msg
}

// mixHash sets dst to BLAKE2s(h || data), Noise's MixHash.
func mixHash(dst, h *[blake2s.Size]byte, data []byte) {
	d, _ := blake2s.New256(nil)
	d.Write(h[:])
	d.Write(data)
	d.Sum(dst[:0])
}
