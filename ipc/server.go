package ipc

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wghooks/wghooks/hooks"
	"github.com/wghooks/wghooks/internal/mono"
	"github.com/wghooks/wghooks/uapi"
)

// Handler applies UAPI operations; *device.Device implements it.
type Handler interface {
	IpcSetOperation(r io.Reader) error
	IpcGetOperation(w io.Writer) error
}

// LinesHandler is implemented by handlers that take a transaction as the
// lines the server has already read, saving a copy of a large one.
type LinesHandler interface {
	IpcSetLines(lines []string) error
}

// DefaultIdleTimeout closes a connection that sends nothing for this long,
// so a client that never finishes cannot hold a goroutine forever.
const DefaultIdleTimeout = 2 * time.Minute

// DefaultWriteTimeout bounds the writing of one reply, so a client that
// sends operations and never reads its replies is cut off.
const DefaultWriteTimeout = 10 * time.Second

// MaxConns bounds concurrent connections; past it a new connection is
// closed at once, unless one of those open has been writing a reply for
// over a second (its client does not read): then the one stuck longest is
// closed to make room, so stuck clients cannot lock `wg show` out until
// WriteTimeout.
const MaxConns = 64

// stuckAfter is how long a reply must have been in writing before its
// connection may be closed to make room for a new one: a reply to a
// client that reads takes milliseconds.
const stuckAfter = time.Second

// HeldBudget bounds the memory all connections together may hold in
// transactions being read and waiting to apply: two of the largest
// transactions. Past it a transaction is refused with errno -ENOMEM and
// nothing applies. The one transaction applying at a time holds about as
// much again as its lines while it does.
const HeldBudget = 2 * uapi.MaxTransaction

// maxOpLen bounds the operation line ("get=1", "set=1"): a longer line is
// no operation, so it is refused (errno -EPROTO, as upstream answers a
// malformed line) and the connection closed without reading the rest.
const maxOpLen = 32

// noBudget holds nothing: for skipping the rest of a failed operation.
var noBudget = uapi.NewBudget(0)

// Server serves UAPI connections for one Handler.
type Server struct {
	h    Handler
	errf hooks.Logf

	// IdleTimeout overrides DefaultIdleTimeout when non-zero. Set it
	// before Serve.
	IdleTimeout time.Duration
	// WriteTimeout overrides DefaultWriteTimeout when non-zero. Set it
	// before Serve.
	WriteTimeout time.Duration

	budget *uapi.Budget // shared by all connections
	// applyMu lets one transaction apply at a time: applying holds about
	// as much again as the lines the budget counts (the parsed
	// transaction, the text for upstream), so concurrent applies would
	// multiply it. Upstream applies one at a time anyway.
	applyMu sync.Mutex

	mu     sync.Mutex
	ln     net.Listener
	conns  map[net.Conn]*connState
	closed bool
	wg     sync.WaitGroup
}

// NewServer returns a server for h. errf receives one line per failed
// operation; nil discards.
func NewServer(h Handler, errf hooks.Logf) *Server {
	return &Server{h: h, errf: errf, conns: make(map[net.Conn]*connState), budget: uapi.NewBudget(HeldBudget)}
}

// Serve accepts connections on ln until Close, or until ln fails (for
// instance because `wg-quick down` removed the socket file). It returns
// nil after Close.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		ln.Close()
		return nil
	}
	s.ln = ln
	s.mu.Unlock()
	for {
		c, err := ln.Accept()
		if err != nil {
			s.mu.Lock()
			closed := s.closed
			s.mu.Unlock()
			if closed {
				return nil
			}
			return fmt.Errorf("failed to accept UAPI connection: %w", err)
		}
		st := s.track(c)
		if st == nil {
			c.Close()
			continue
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer s.untrack(c)
			s.serveConn(c, st)
		}()
	}
}

// connState is what the server knows of one connection.
type connState struct {
	writing atomic.Int64 // mono time a reply began to be written; 0 when none is
}

func (st *connState) startWrite() { st.writing.CompareAndSwap(0, mono.Now()) }

func (st *connState) endWrite() { st.writing.Store(0) }

// track admits c unless MaxConns are open and none of them has been
// writing a reply for stuckAfter; otherwise the longest writer is closed
// to make room. It returns nil when c is refused.
func (s *Server) track(c net.Conn) *connState {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	if len(s.conns) >= MaxConns {
		var stuck net.Conn
		since := mono.Now() - int64(stuckAfter)
		for oc, st := range s.conns {
			if w := st.writing.Load(); w != 0 && w < since {
				stuck, since = oc, w
			}
		}
		if stuck == nil {
			return nil
		}
		delete(s.conns, stuck)
		stuck.Close() // its handler returns and untracks it
		s.errf.Printf("UAPI: %d connections open: closed one stuck writing a reply for %v", MaxConns, time.Duration(mono.Now()-since))
	}
	st := new(connState)
	s.conns[c] = st
	return st
}

func (s *Server) untrack(c net.Conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	c.Close()
}

// Close stops accepting, closes open connections and waits for their
// handlers. It is idempotent.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	var err error
	if s.ln != nil {
		err = s.ln.Close()
	}
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	return err
}

// serveConn runs operations on one connection until the client closes it.
// Each operation is "get=1\n\n" or "set=1\n" followed by key=value lines
// and a blank line; each gets "errno=N\n\n" at its end. st tells track
// when a reply is being written.
func (s *Server) serveConn(c net.Conn, st *connState) {
	r := bufio.NewReader(c)
	w := bufio.NewWriter(c)
	idle := s.IdleTimeout
	if idle == 0 {
		idle = DefaultIdleTimeout
	}
	writeTimeout := s.WriteTimeout
	if writeTimeout == 0 {
		writeTimeout = DefaultWriteTimeout
	}
	// A reply, a get's included, must be written within writeTimeout of
	// its start; reading a large set before it may take longer.
	replying := false
	startReply := func() {
		if !replying {
			replying = true
			c.SetWriteDeadline(time.Now().Add(writeTimeout))
			st.startWrite()
		}
	}
	for {
		c.SetReadDeadline(time.Now().Add(idle))
		op, err := readOp(r)
		if errors.Is(err, errOpTooLong) {
			err = uapi.Errorf(uapi.ErrnoProtocol, "failed to read UAPI operation %s: longer than %d bytes", uapi.Redact(op), maxOpLen)
			s.errf.Printf("UAPI: %v", err)
			startReply()
			fmt.Fprintf(w, "errno=%d\n\n", errno(err))
			w.Flush()
			return
		}
		if err != nil {
			return
		}
		switch op {
		case "set=1\n":
			err = s.set(r)
		case "get=1\n":
			startReply()
			err = s.get(r, w)
		case "\n":
			continue // stray blank line between operations
		default:
			// Read the rest of whatever this was, so the next operation
			// starts cleanly, and say why it failed.
			uapi.ReadTransactionBudget(r, noBudget)
			err = uapi.Errorf(uapi.ErrnoInvalid, "invalid UAPI operation %s", uapi.Redact(strings.TrimSuffix(op, "\n")))
		}
		if err != nil && isConnGone(err) {
			return
		}
		startReply()
		fmt.Fprintf(w, "errno=%d\n\n", errno(err))
		if err != nil {
			s.errf.Printf("UAPI: %v", err)
		}
		if w.Flush() != nil {
			return
		}
		st.endWrite()
		replying = false
	}
}

func (s *Server) set(r *bufio.Reader) error {
	lines, ended, held, err := uapi.ReadTransactionBudget(r, s.budget)
	if err != nil {
		return err
	}
	defer s.budget.Release(held)
	s.applyMu.Lock()
	defer s.applyMu.Unlock()
	if lh, ok := s.h.(LinesHandler); ok {
		err = lh.IpcSetLines(lines)
	} else {
		var b strings.Builder
		for _, l := range lines {
			b.WriteString(l)
			b.WriteByte('\n')
		}
		err = s.h.IpcSetOperation(strings.NewReader(b.String()))
	}
	if !ended {
		// The client closed mid-transaction: what it sent was applied,
		// as upstream does; there is no one left to answer.
		return errConnGone
	}
	return err
}

func (s *Server) get(r *bufio.Reader, w io.Writer) error {
	next, err := r.ReadByte()
	if err != nil {
		return errConnGone
	}
	if next != '\n' {
		r.UnreadByte()
		uapi.ReadTransactionBudget(r, noBudget)
		return uapi.Errorf(uapi.ErrnoInvalid, "trailing character in UAPI get: %q", next)
	}
	return s.h.IpcGetOperation(w)
}

var errOpTooLong = errors.New("operation too long")

// readOp reads the operation line, newline included. Past maxOpLen bytes
// without a newline it stops and returns what it read with errOpTooLong.
func readOp(r *bufio.Reader) (string, error) {
	var b []byte
	for len(b) < maxOpLen {
		c, err := r.ReadByte()
		if err != nil {
			return "", err
		}
		b = append(b, c)
		if c == '\n' {
			return string(b), nil
		}
	}
	return string(b), errOpTooLong
}

var errConnGone = errors.New("connection gone")

func isConnGone(err error) bool { return errors.Is(err, errConnGone) }

// errno maps an error to the number in an "errno=" reply.
func errno(err error) int64 {
	if err == nil {
		return 0
	}
	var coded uapi.Coded
	if errors.As(err, &coded) {
		return coded.ErrorCode()
	}
	return uapi.ErrnoUnknown
}
