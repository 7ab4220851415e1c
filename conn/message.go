package conn

// WireGuard message types: the first byte of every datagram.
const (
	MessageInitiation  = 1
	MessageResponse    = 2
	MessageCookieReply = 3
	MessageTransport   = 4
)

// Sizes of the fixed-size handshake messages.
const (
	MessageInitiationSize  = 148
	MessageResponseSize    = 92
	MessageCookieReplySize = 64
	MessageTransportHeader = 16
	// MessageKeepaliveSize is a transport message with no payload: the
	// header and the 16-byte authentication tag. Nothing answers it.
	MessageKeepaliveSize = MessageTransportHeader + 16
)

// MessageType returns the WireGuard message type of a datagram, or 0 when it
// is too short to carry one.
func MessageType(packet []byte) byte {
	if len(packet) < 4 {
		return 0
	}
	return packet[0]
}
