package settings

import (
	"fmt"
	"net/netip"
	"strings"
	"time"
)

// Kind selects a setting's grammar (see the package doc).
type Kind int

const (
	Bool Kind = iota + 1
	Duration
	Int
	Enum
	Path
	URL
	ListenAddr
	AddrPorts
	Secret
)

func (k Kind) String() string {
	switch k {
	case Bool:
		return "bool"
	case Duration:
		return "duration"
	case Int:
		return "int"
	case Enum:
		return "enum"
	case Path:
		return "path"
	case URL:
		return "url"
	case ListenAddr:
		return "address"
	case AddrPorts:
		return "addresses"
	case Secret:
		return "secret"
	}
	return fmt.Sprintf("kind(%d)", int(k))
}

// Source says where a value came from.
type Source int

const (
	FromDefault Source = iota
	FromFile
	FromEnv
)

func (s Source) String() string {
	switch s {
	case FromFile:
		return "file"
	case FromEnv:
		return "environment"
	}
	return "default"
}

// Setting declares one setting of a daemon whose settings fill a T.
type Setting[T any] struct {
	// Name is the environment variable, with the table's prefix
	// (WGHOOKS_STATE_FILE). The file key is derived from it (see Key).
	Name string
	Kind Kind
	// Default is the value when no source sets one, in the kind's
	// grammar; "" leaves the setting unset. "IFACE" in a Path default is
	// replaced by the interface name.
	Default string
	// Builtin says Default is the destination's own default (what its
	// zero value means), so Set is called only when a source gives a
	// value; the table states it for the docs and the settings listing.
	Builtin bool
	// Off says the setting accepts "off" (and, for a duration, "0").
	Off bool
	// Floor and Ceiling bound a Duration or an Int, in its grammar.
	Floor, Ceiling string
	// Values are an Enum's choices.
	Values []string
	// Port is the port of an AddrPorts address written without one.
	Port uint16
	// Listen reads a ListenAddr into its canonical form (the server that
	// listens owns that grammar: ops.ListenAddr for the daemon's).
	Listen func(string) (string, error)
	// EnvOnly settings cannot be set from the file (the file's own
	// directory, for one).
	EnvOnly bool
	// Doc is one line for the docs.
	Doc string
	// Redact, when set, is how the value is printed and quoted in errors
	// (a URL without its password).
	Redact func(string) string
	// Set stores a value in the destination. Nil: the caller reads the
	// value from Values itself.
	Set func(dst *T, v Value) error
}

// Key is a setting's file key: its name without prefix, in lower case.
func Key(prefix, name string) string {
	return strings.ToLower(strings.TrimPrefix(name, prefix))
}

// Value is a setting's value as read.
type Value struct {
	// Text is the value in canonical form ("" when unset): on/off for a
	// Bool, the address with its port for a ListenAddr or AddrPorts.
	Text   string
	Source Source
	// Where is the file and line, for a value from the file.
	Where string
	// Off reports "off".
	Off   bool
	Bool  bool
	Dur   time.Duration
	Int   int
	Addrs []netip.AddrPort
}

// IsSet reports whether the value is set (by a source or a default).
func (v Value) IsSet() bool { return v.Text != "" }
