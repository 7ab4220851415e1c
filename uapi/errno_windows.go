package uapi

// Errno values used in "errno=" replies, the same as upstream's on Windows
// (golang.zx2c4.com/wireguard/ipc, uapi_windows.go): Linux's numbers, as
// Windows has no errnos of its own for these.
const (
	ErrnoIO        = -int64(5)
	ErrnoProtocol  = -int64(71)
	ErrnoInvalid   = -int64(22)
	ErrnoPortInUse = -int64(98)
	ErrnoNoMemory  = -int64(12)
	ErrnoUnknown   = -55 // ENOANO, upstream's "other UAPI error"
)
