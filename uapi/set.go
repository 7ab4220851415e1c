package uapi

import (
	"bufio"
	"encoding/hex"
	"errors"
	"io"
	"net/netip"
	"strconv"
	"strings"
	"sync/atomic"
)

// Line is one "key=value" line.
type Line struct {
	Key, Value string
}

func (l Line) String() string { return l.Key + "=" + l.Value }

// Peer is the part of a set transaction that follows one public_key line.
type Peer struct {
	PublicKey [32]byte
	Lines     []Line // standard keys, in order, without public_key
	Ext       []Line // extension keys, in order
	Remove    bool   // remove=true was given
}

// Set is a parsed, validated set transaction.
type Set struct {
	Device    []Line // standard device keys, in order
	DeviceExt []Line // extension device keys, in order
	Peers     []Peer
	// ReplacePeers reports replace_peers=true.
	ReplacePeers bool
}

// Extensions tells the parser which keys beyond upstream's are accepted.
// A nil Extensions accepts none. Validate functions may be nil.
type Extensions struct {
	Device map[string]func(value string) error
	Peer   map[string]func(value string) error
}

// Limits bound what one transaction may hold, so a client cannot make the
// daemon buffer without end. MaxTransaction counts each line's bytes plus
// lineOverhead, what holding a line costs besides its bytes: without it a
// transaction of short lines held eight times its size.
const (
	MaxLineLen     = 4096
	MaxTransaction = 64 << 20

	lineOverhead = 32
)

// ReadTransaction reads one transaction's lines from r: up to a blank line
// or the end of input. It always consumes the whole transaction, also when
// it returns an error, so the next operation on the same connection starts
// at a clean boundary. ended reports whether a blank line ended it.
func ReadTransaction(r *bufio.Reader) (lines []string, ended bool, err error) {
	lines, ended, _, err = ReadTransactionBudget(r, nil)
	return lines, ended, err
}

// Budget is memory shared by all transactions being held at once, so many
// connections each sending a large transaction cannot add up to more than
// the budget. A nil *Budget is unlimited.
type Budget struct{ left atomic.Int64 }

// NewBudget returns a budget of n bytes.
func NewBudget(n int64) *Budget {
	b := new(Budget)
	b.left.Store(n)
	return b
}

func (b *Budget) take(n int) bool {
	if b == nil {
		return true
	}
	if b.left.Add(-int64(n)) < 0 {
		b.left.Add(int64(n))
		return false
	}
	return true
}

// Release returns n bytes taken by ReadTransactionBudget.
func (b *Budget) Release(n int) {
	if b != nil {
		b.left.Add(int64(n))
	}
}

// ReadTransactionBudget is ReadTransaction charging every held line to b.
// held is what the caller must Release once it no longer holds lines; a
// transaction that does not fit b is refused (errno -ENOMEM) and holds
// nothing.
func ReadTransactionBudget(r *bufio.Reader, b *Budget) (lines []string, ended bool, held int, err error) {
	lines, ended, held, err = readTransaction(r, b)
	if err != nil {
		b.Release(held)
		return nil, ended, 0, err
	}
	return lines, ended, held, nil
}

func readTransaction(r *bufio.Reader, b *Budget) (lines []string, ended bool, held int, err error) {
	total := 0
	var firstErr error
	for {
		line, rerr := readLine(r)
		if rerr != nil && !errors.Is(rerr, errLineTooLong) {
			if errors.Is(rerr, io.EOF) && line == "" {
				return lines, false, held, firstErr
			}
			if !errors.Is(rerr, io.EOF) {
				return lines, false, held, Errorf(ErrnoIO, "failed to read input: %w", rerr)
			}
		}
		if errors.Is(rerr, errLineTooLong) && firstErr == nil {
			firstErr = Errorf(ErrnoProtocol, "failed to parse line: longer than %d bytes", MaxLineLen)
		}
		if line == "" && rerr == nil {
			return lines, true, held, firstErr
		}
		cost := len(line) + 1 + lineOverhead
		total += cost
		if total > MaxTransaction && firstErr == nil {
			firstErr = Errorf(ErrnoProtocol, "failed to read transaction: larger than %d bytes", MaxTransaction)
		}
		if firstErr == nil && !b.take(cost) {
			firstErr = Errorf(ErrnoNoMemory, "failed to read transaction: other transactions in flight hold the daemon's UAPI memory")
		}
		if firstErr != nil && lines != nil {
			// Refused: let go of what was held now, not at the end.
			b.Release(held)
			lines, held = nil, 0
		}
		if firstErr == nil {
			lines = append(lines, line)
			held += cost
		}
		if errors.Is(rerr, io.EOF) {
			return lines, false, held, firstErr
		}
	}
}

var errLineTooLong = errors.New("line too long")

// readLine reads one '\n'-terminated line without the newline. A line
// longer than MaxLineLen is consumed whole and reported as errLineTooLong.
func readLine(r *bufio.Reader) (string, error) {
	var sb strings.Builder
	tooLong := false
	for {
		chunk, err := r.ReadSlice('\n')
		if !tooLong {
			// The newline does not count; a last line may end without one.
			n := len(chunk)
			if n > 0 && chunk[n-1] == '\n' {
				n--
			}
			if sb.Len()+n > MaxLineLen {
				tooLong = true
				sb.Reset()
			} else {
				sb.Write(chunk)
			}
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if tooLong {
			if err == nil {
				return "x", errLineTooLong
			}
			return "x", errors.Join(errLineTooLong, err)
		}
		s := strings.TrimSuffix(sb.String(), "\n")
		return s, err
	}
}

// ParseSet validates the lines of a set transaction. Nothing is applied:
// on error the caller leaves the device untouched.
func ParseSet(lines []string, ext *Extensions) (*Set, error) {
	s := new(Set)
	var cur *Peer
	for i, line := range lines {
		key, value, ok := strings.Cut(line, "=")
		if !ok {
			return nil, Errorf(ErrnoProtocol, "failed to parse line %d %s: no '='", i+1, Redact(line))
		}
		if key == "public_key" {
			pk, err := ParseKey(value)
			if err != nil {
				return nil, Errorf(ErrnoInvalid, "failed to get peer by public key: %w", err)
			}
			s.Peers = append(s.Peers, Peer{PublicKey: pk})
			cur = &s.Peers[len(s.Peers)-1]
			continue
		}
		l := Line{key, value}
		if cur == nil {
			if err := validateDeviceLine(l); err == nil {
				if key == "replace_peers" {
					s.ReplacePeers = true
				}
				s.Device = append(s.Device, l)
				continue
			} else if !isUnknownKey(err) {
				return nil, err
			}
			if err := validateExt(ext.device(), l, "device"); err != nil {
				return nil, err
			}
			s.DeviceExt = append(s.DeviceExt, l)
			continue
		}
		if err := validatePeerLine(l); err == nil {
			if key == "remove" {
				cur.Remove = true
			}
			cur.Lines = append(cur.Lines, l)
			continue
		} else if !isUnknownKey(err) {
			return nil, err
		}
		if err := validateExt(ext.peer(), l, "peer"); err != nil {
			return nil, err
		}
		cur.Ext = append(cur.Ext, l)
	}
	return s, nil
}

// Standard renders the transaction's standard keys for upstream, in their
// original order, ending with the blank line.
func (s *Set) Standard() string {
	var b strings.Builder
	for _, l := range s.Device {
		b.WriteString(l.String())
		b.WriteByte('\n')
	}
	for _, p := range s.Peers {
		b.WriteString("public_key=")
		b.WriteString(hex.EncodeToString(p.PublicKey[:]))
		b.WriteByte('\n')
		for _, l := range p.Lines {
			b.WriteString(l.String())
			b.WriteByte('\n')
		}
	}
	b.WriteByte('\n')
	return b.String()
}

func (e *Extensions) device() map[string]func(string) error {
	if e == nil {
		return nil
	}
	return e.Device
}

func (e *Extensions) peer() map[string]func(string) error {
	if e == nil {
		return nil
	}
	return e.Peer
}

func validateExt(m map[string]func(string) error, l Line, scope string) error {
	validate, ok := m[l.Key]
	if !ok {
		return Errorf(ErrnoInvalid, "invalid UAPI %s key: %s", scope, QuoteKey(l.Key))
	}
	if validate != nil {
		if err := validate(l.Value); err != nil {
			// Extension keys carry no secrets: the value is quoted (cut
			// to 64 bytes), and the reason is the feature's text.
			return Errorf(ErrnoInvalid, "failed to set %s to %s: %w", l.Key, QuoteValue(l.Value), err)
		}
	}
	return nil
}

// numErr is a strconv error without the input it quotes.
func numErr(err error) error {
	var ne *strconv.NumError
	if errors.As(err, &ne) {
		return ne.Err
	}
	return err
}

var errUnknownKey = errors.New("unknown key")

func isUnknownKey(err error) bool { return errors.Is(err, errUnknownKey) }

func validateDeviceLine(l Line) error {
	switch l.Key {
	case "private_key":
		if _, err := ParseKey(l.Value); err != nil {
			return Errorf(ErrnoInvalid, "failed to set private_key: %w", err)
		}
	case "listen_port":
		if _, err := strconv.ParseUint(l.Value, 10, 16); err != nil {
			return Errorf(ErrnoInvalid, "failed to parse listen_port: %w", numErr(err))
		}
	case "fwmark":
		if _, err := strconv.ParseUint(l.Value, 10, 32); err != nil {
			return Errorf(ErrnoInvalid, "failed to parse fwmark: %w", numErr(err))
		}
	case "replace_peers":
		return wantTrue(l)
	default:
		return errUnknownKey
	}
	return nil
}

func validatePeerLine(l Line) error {
	switch l.Key {
	case "update_only", "remove", "replace_allowed_ips":
		return wantTrue(l)
	case "preshared_key":
		if _, err := ParseKey(l.Value); err != nil {
			return Errorf(ErrnoInvalid, "failed to set preshared key: %w", err)
		}
	case "endpoint":
		if _, err := netip.ParseAddrPort(l.Value); err != nil {
			return Errorf(ErrnoInvalid, "failed to set endpoint: want IP:port")
		}
	case "persistent_keepalive_interval":
		if _, err := strconv.ParseUint(l.Value, 10, 16); err != nil {
			return Errorf(ErrnoInvalid, "failed to set persistent keepalive interval: %w", numErr(err))
		}
	case "allowed_ip":
		if _, err := netip.ParsePrefix(strings.TrimPrefix(l.Value, "-")); err != nil {
			return Errorf(ErrnoInvalid, "failed to set allowed ip: want an IP prefix")
		}
	case "protocol_version":
		if l.Value != "1" {
			return Errorf(ErrnoInvalid, "failed to set protocol version: want 1")
		}
	default:
		return errUnknownKey
	}
	return nil
}

func wantTrue(l Line) error {
	if l.Value != "true" {
		return Errorf(ErrnoInvalid, "failed to set %s: want true", l.Key)
	}
	return nil
}

// ParseKey decodes a 32-byte key in lowercase or uppercase hex.
func ParseKey(s string) ([32]byte, error) {
	var k [32]byte
	// The errors never quote s: it may be a private key.
	if len(s) != 64 {
		return k, errors.New("want 64 hex digits")
	}
	if _, err := hex.Decode(k[:], []byte(s)); err != nil {
		return k, errors.New("want 64 hex digits")
	}
	return k, nil
}
