package uapi

import "fmt"

// The errno values of "errno=" replies (ErrnoIO, ErrnoProtocol,
// ErrnoInvalid, ErrnoPortInUse, ErrnoNoMemory, ErrnoUnknown) are
// upstream's on each platform: errno_unix.go, errno_windows.go.

// Error is a configuration-protocol error with the errno a UAPI client
// reads. Upstream's *device.IPCError satisfies the same ErrorCode method.
type Error struct {
	Code int64
	Err  error
}

func (e *Error) Error() string    { return fmt.Sprintf("IPC error %d: %v", e.Code, e.Err) }
func (e *Error) Unwrap() error    { return e.Err }
func (e *Error) ErrorCode() int64 { return e.Code }

// Errorf builds an *Error with code and a formatted message.
func Errorf(code int64, format string, args ...any) *Error {
	return &Error{Code: code, Err: fmt.Errorf(format, args...)}
}

// Coded is satisfied by errors that carry an errno for a UAPI reply.
type Coded interface {
	error
	ErrorCode() int64
}
