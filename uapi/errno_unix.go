//go:build unix

package uapi

import "golang.org/x/sys/unix"

// Errno values used in "errno=" replies, the same as upstream's
// (golang.zx2c4.com/wireguard/ipc, uapi_unix.go): this platform's errnos.
const (
	ErrnoIO        = -int64(unix.EIO)
	ErrnoProtocol  = -int64(unix.EPROTO)
	ErrnoInvalid   = -int64(unix.EINVAL)
	ErrnoPortInUse = -int64(unix.EADDRINUSE)
	ErrnoNoMemory  = -int64(unix.ENOMEM)
	ErrnoUnknown   = -55 // ENOANO, upstream's "other UAPI error"
)
