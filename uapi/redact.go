package uapi

import (
	"fmt"
	"strconv"
	"strings"
)

// Redaction: a client's line may carry a secret (private_key=…,
// preshared_key=…, or a key pasted where an operation belongs), and may
// be of any length, so logs and errors name a line and never quote it.
// Only the values of extension keys, which carry no secrets, are quoted,
// cut short.

const (
	maxQuotedKey    = 32 // bytes of a key quoted before it is cut
	maxQuotedPrefix = 4  // bytes of a line without '=' quoted
	maxQuotedValue  = 64 // bytes of a public value quoted before it is cut
)

// Redact names a client's line without its value, for a log or an error:
// the key (at most 32 bytes) as `"key=…"`, or, for a line without '=',
// the line itself when it is at most 4 bytes, else its first 4 bytes and
// its length, as `"abcd…" (N bytes)`.
func Redact(line string) string {
	if key, _, ok := strings.Cut(line, "="); ok {
		return strconv.Quote(cut(key, maxQuotedKey) + "=…")
	}
	if len(line) <= maxQuotedPrefix {
		return strconv.Quote(line)
	}
	return fmt.Sprintf("%s (%d bytes)", strconv.Quote(line[:maxQuotedPrefix]+"…"), len(line))
}

// QuoteValue quotes the value of a key that carries no secret, cut to 64
// bytes.
func QuoteValue(v string) string { return strconv.Quote(cut(v, maxQuotedValue)) }

// QuoteKey quotes a key, cut to 32 bytes.
func QuoteKey(key string) string { return strconv.Quote(cut(key, maxQuotedKey)) }

func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
