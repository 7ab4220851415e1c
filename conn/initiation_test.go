package conn

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"testing"
	"time"

	"golang.org/x/crypto/curve25519"
	"golang.zx2c4.com/wireguard/conn/bindtest"
	wgdevice "golang.zx2c4.com/wireguard/device"
	"golang.zx2c4.com/wireguard/tai64n"
	"golang.zx2c4.com/wireguard/tun/tuntest"
)

type testKey struct{ priv, pub [32]byte }

func newTestKey(t testing.TB) testKey {
	t.Helper()
	var k testKey
	if _, err := rand.Read(k.priv[:]); err != nil {
		t.Fatal(err)
	}
	k.priv[0] &= 248
	k.priv[31] = (k.priv[31] & 127) | 64
	pub, err := curve25519.X25519(k.priv[:], curve25519.Basepoint)
	if err != nil {
		t.Fatal(err)
	}
	copy(k.pub[:], pub)
	return k
}

func mustIdentity(t testing.TB, priv [32]byte) *Identity {
	t.Helper()
	id, err := NewIdentity(priv)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func seal(t testing.TB, from testKey, to [32]byte, ts tai64n.Timestamp) []byte {
	t.Helper()
	eph := newTestKey(t)
	msg, err := SealInitiation(from.priv, to, eph.priv, 0x01020304, ts)
	if err != nil {
		t.Fatal(err)
	}
	return msg
}

// upstreamDevice builds an upstream device with key k knowing the given
// peers, on in-memory TUN and bind.
func upstreamDevice(t *testing.T, k testKey, up bool, peers ...[32]byte) *wgdevice.Device {
	t.Helper()
	d := wgdevice.NewDevice(tuntest.NewChannelTUN().TUN(), bindtest.NewChannelBinds()[0], wgdevice.NewLogger(wgdevice.LogLevelSilent, ""))
	t.Cleanup(d.Close)
	conf := "private_key=" + hex.EncodeToString(k.priv[:]) + "\n"
	for _, p := range peers {
		conf += "public_key=" + hex.EncodeToString(p[:]) + "\n"
	}
	if err := d.IpcSet(conf); err != nil {
		t.Fatal(err)
	}
	if up {
		if err := d.Up(); err != nil {
			t.Fatal(err)
		}
	}
	return d
}

// marshalInitiation lays an upstream MessageInitiation out on the wire.
func marshalInitiation(m *wgdevice.MessageInitiation) []byte {
	b := make([]byte, MessageInitiationSize)
	binary.LittleEndian.PutUint32(b, m.Type)
	binary.LittleEndian.PutUint32(b[initOffSender:], m.Sender)
	copy(b[initOffEphemeral:], m.Ephemeral[:])
	copy(b[initOffStatic:], m.Static[:])
	copy(b[initOffTimestamp:], m.Timestamp[:])
	copy(b[initOffMAC1:], m.MAC1[:])
	copy(b[initOffMAC2:], m.MAC2[:])
	return b
}

func unmarshalInitiation(b []byte) *wgdevice.MessageInitiation {
	var m wgdevice.MessageInitiation
	m.Type = binary.LittleEndian.Uint32(b)
	m.Sender = binary.LittleEndian.Uint32(b[initOffSender:])
	copy(m.Ephemeral[:], b[initOffEphemeral:])
	copy(m.Static[:], b[initOffStatic:])
	copy(m.Timestamp[:], b[initOffTimestamp:])
	copy(m.MAC1[:], b[initOffMAC1:])
	copy(m.MAC2[:], b[initOffMAC2:])
	return &m
}

// TestDecodeUpstreamInitiation decodes what upstream's own initiator
// builds: the reference for the wire format and the Noise steps.
func TestDecodeUpstreamInitiation(t *testing.T) {
	initiator, responder := newTestKey(t), newTestKey(t)
	dev := upstreamDevice(t, initiator, false, responder.pub)
	peer := dev.LookupPeer(responder.pub)
	m, err := dev.CreateMessageInitiation(peer)
	if err != nil {
		t.Fatal(err)
	}
	msg := marshalInitiation(m)
	var gen wgdevice.CookieGenerator
	gen.Init(responder.pub)
	gen.AddMacs(msg)

	got, err := mustIdentity(t, responder.priv).Decode(msg)
	if err != nil {
		t.Fatalf("Decode of upstream's initiation: %v", err)
	}
	if got.Initiator != initiator.pub {
		t.Fatalf("initiator = %x, want %x", got.Initiator, initiator.pub)
	}
	if got.Sender != m.Sender {
		t.Fatalf("sender = %d, want %d", got.Sender, m.Sender)
	}
}

// TestSealAcceptedByUpstream feeds SealInitiation's output to upstream's
// responder, which must accept it.
func TestSealAcceptedByUpstream(t *testing.T) {
	initiator, responder := newTestKey(t), newTestKey(t)
	dev := upstreamDevice(t, responder, true, initiator.pub)
	msg := seal(t, initiator, responder.pub, tai64n.Now())
	if p := dev.ConsumeMessageInitiation(unmarshalInitiation(msg)); p == nil {
		t.Fatal("upstream refused SealInitiation's message")
	}
}

func TestDecode(t *testing.T) {
	initiator, responder, victim, other := newTestKey(t), newTestKey(t), newTestKey(t), newTestKey(t)
	id := mustIdentity(t, responder.priv)
	ts := tai64n.Now()
	valid := seal(t, initiator, responder.pub, ts)

	remac := func(b []byte) []byte {
		var gen wgdevice.CookieGenerator
		gen.Init(responder.pub)
		gen.AddMacs(b)
		return b
	}
	flip := func(off int) []byte {
		b := bytes.Clone(valid)
		b[off] ^= 0x40
		return remac(b)
	}
	eph := newTestKey(t)
	impersonation, err := SealInitiationClaiming(victim.pub, initiator.priv, responder.pub, eph.priv, 7, ts)
	if err != nil {
		t.Fatal(err)
	}
	withMAC2 := bytes.Clone(valid)
	withMAC2[initOffMAC2] ^= 1

	tests := []struct {
		name    string
		msg     []byte
		wantErr error
	}{
		{"valid", valid, nil},
		{"mac2 is not checked here", withMAC2, nil},
		{"empty", nil, ErrNotInitiation},
		{"short", valid[:100], ErrNotInitiation},
		{"long", append(bytes.Clone(valid), 0), ErrNotInitiation},
		{"response type", func() []byte { b := bytes.Clone(valid); b[0] = 2; return remac(b) }(), ErrNotInitiation},
		{"reserved bytes set", func() []byte { b := bytes.Clone(valid); b[1] = 1; return remac(b) }(), ErrNotInitiation},
		{"bad mac1", func() []byte { b := bytes.Clone(valid); b[initOffMAC1] ^= 1; return b }(), ErrBadMAC1},
		{"for another responder", seal(t, initiator, other.pub, ts), ErrBadMAC1},
		{"sender changed without mac1", func() []byte { b := bytes.Clone(valid); b[initOffSender] ^= 1; return b }(), ErrBadMAC1},
		{"static corrupted, mac1 valid", flip(initOffStatic + 3), ErrBadStatic},
		{"ephemeral corrupted, mac1 valid", flip(initOffEphemeral + 5), ErrBadStatic},
		{"timestamp corrupted, mac1 valid", flip(initOffTimestamp + 1), ErrBadTimestamp},
		{"impersonation: claims a key it cannot prove", impersonation, ErrBadTimestamp},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := id.Decode(tc.msg)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("Decode: err = %v, want %v", err, tc.wantErr)
			}
			if tc.wantErr != nil {
				if id.CheckMAC1(tc.msg) && errors.Is(tc.wantErr, ErrBadMAC1) {
					t.Fatal("CheckMAC1 accepted what Decode refused for mac1")
				}
				return
			}
			if got.Initiator != initiator.pub || got.Timestamp != ts || got.Sender != 0x01020304 {
				t.Fatalf("Decode = %+v, want initiator %x, timestamp %v", got, initiator.pub, ts)
			}
			if !id.CheckMAC1(tc.msg) {
				t.Fatal("CheckMAC1 refused a valid message")
			}
		})
	}
}

// TestOpenClaimsAuthenticateProves: Open names the key an initiation
// claims, an impersonation's too; only Authenticate tells the real
// initiator from one who cannot prove the key.
func TestOpenClaimsAuthenticateProves(t *testing.T) {
	initiator, responder, victim, eph := newTestKey(t), newTestKey(t), newTestKey(t), newTestKey(t)
	id := mustIdentity(t, responder.priv)
	ts := tai64n.Now()
	impersonation, err := SealInitiationClaiming(victim.pub, initiator.priv, responder.pub, eph.priv, 7, ts)
	if err != nil {
		t.Fatal(err)
	}
	o, err := id.Open(impersonation)
	if err != nil || o.Initiator != victim.pub || o.Sender != 7 {
		t.Fatalf("Open(impersonation) = %+v, %v; want the victim's key claimed, sender 7", o, err)
	}
	if _, err := o.Authenticate(); !errors.Is(err, ErrBadTimestamp) {
		t.Fatalf("Authenticate(impersonation) = %v; want %v", err, ErrBadTimestamp)
	}
	o, err = id.Open(seal(t, initiator, responder.pub, ts))
	if err != nil || o.Initiator != initiator.pub {
		t.Fatalf("Open(valid) = %+v, %v", o, err)
	}
	got, err := o.Authenticate()
	if err != nil || got.Initiator != initiator.pub || got.Timestamp != ts {
		t.Fatalf("Authenticate(valid) = %+v, %v", got, err)
	}
}

func TestResponseReceiver(t *testing.T) {
	b := make([]byte, MessageResponseSize)
	b[0] = MessageResponse
	binary.LittleEndian.PutUint32(b[8:], 42)
	if r, ok := ResponseReceiver(b); !ok || r != 42 {
		t.Fatalf("ResponseReceiver = %d, %v; want 42, true", r, ok)
	}
	if _, ok := ResponseReceiver(b[:50]); ok {
		t.Fatal("ResponseReceiver accepted a short packet")
	}
}

// FuzzDecode: Decode never panics, and accepts a message only if its
// authenticated part is exactly what the initiator sealed (only mac2 may
// differ), naming that initiator.
func FuzzDecode(f *testing.F) {
	initiator, responder := newTestKey(f), newTestKey(f)
	id := mustIdentity(f, responder.priv)
	valid := seal(f, initiator, responder.pub, tai64n.Now())
	f.Add(valid)
	f.Add(valid[:MessageInitiationSize-1])
	f.Add([]byte{1, 0, 0, 0})
	f.Add(make([]byte, MessageInitiationSize))
	f.Fuzz(func(t *testing.T, msg []byte) {
		got, err := id.Decode(msg)
		if err != nil {
			return
		}
		if !bytes.Equal(msg[:initOffMAC2], valid[:initOffMAC2]) {
			t.Fatalf("Decode accepted a message that differs from the sealed one before mac2")
		}
		if got.Initiator != initiator.pub {
			t.Fatalf("Decode named %x, want %x", got.Initiator, initiator.pub)
		}
	})
}

func BenchmarkDecode(b *testing.B) {
	initiator, responder := newTestKey(b), newTestKey(b)
	id := mustIdentity(b, responder.priv)
	msg := seal(b, initiator, responder.pub, tai64n.Now())
	b.ReportAllocs()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		if _, err := id.Decode(msg); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "identifications/s")
}
