package settings

import (
	"fmt"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// parse reads text in the grammar of s's kind and checks its bounds. The
// error says what is wanted; the caller names the setting and the input.
func (s *Setting[T]) parse(text string) (Value, error) {
	if s.Off && strings.EqualFold(text, "off") {
		return Value{Text: "off", Off: true}, nil
	}
	switch s.Kind {
	case Bool:
		b, ok := parseBool(text)
		if !ok {
			return Value{}, fmt.Errorf("want on or off (true/false, 1/0)")
		}
		v := Value{Text: "off", Bool: b}
		if b {
			v.Text = "on"
		}
		return v, nil
	case Duration:
		d, err := time.ParseDuration(text)
		if err == nil && d == 0 && s.Off {
			return Value{Text: "off", Off: true}, nil
		}
		lo, hi := s.durationBounds()
		if err != nil || d < lo || d > hi {
			return Value{}, fmt.Errorf("want %s", s.want())
		}
		return Value{Text: formatDuration(d), Dur: d}, nil
	case Int:
		n, err := strconv.Atoi(text)
		lo, hi := s.intBounds()
		if err != nil || n < lo || n > hi {
			return Value{}, fmt.Errorf("want %s", s.want())
		}
		return Value{Text: strconv.Itoa(n), Int: n}, nil
	case Enum:
		for _, c := range s.Values {
			if strings.EqualFold(text, c) {
				return Value{Text: c, Off: c == "off"}, nil
			}
		}
		return Value{}, fmt.Errorf("want %s", s.want())
	case Path, Secret:
		return Value{Text: text}, nil
	case URL:
		u, err := url.Parse(text)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return Value{}, fmt.Errorf("want %s", s.want())
		}
		return Value{Text: text}, nil
	case ListenAddr:
		addr, err := s.Listen(text)
		if err != nil {
			return Value{}, fmt.Errorf("want %s", s.want())
		}
		return Value{Text: addr}, nil
	case AddrPorts:
		var aps []netip.AddrPort
		var canon []string
		for _, f := range strings.Split(text, ",") {
			f = strings.TrimSpace(f)
			ap, err := netip.ParseAddrPort(f)
			if err != nil {
				a, aerr := netip.ParseAddr(f)
				if aerr != nil {
					return Value{}, fmt.Errorf("%q is not an address: want %s", f, s.want())
				}
				ap = netip.AddrPortFrom(a, s.Port)
			}
			aps = append(aps, ap)
			canon = append(canon, ap.String())
		}
		return Value{Text: strings.Join(canon, ","), Addrs: aps}, nil
	}
	return Value{}, fmt.Errorf("setting of unknown kind %v", s.Kind)
}

// want describes the grammar for error messages and the docs.
func (s *Setting[T]) want() string {
	var w string
	switch s.Kind {
	case Bool:
		w = "on or off"
	case Duration:
		w = fmt.Sprintf("a duration from %s to %s", s.Floor, s.Ceiling)
	case Int:
		w = fmt.Sprintf("a number from %s to %s", s.Floor, s.Ceiling)
	case Enum:
		w = strings.Join(s.Values, ", ")
		if i := strings.LastIndex(w, ", "); i >= 0 {
			w = w[:i] + " or " + w[i+2:]
		}
		return w
	case Path:
		w = "a path"
	case URL:
		w = "an http or https URL"
	case ListenAddr:
		w = "host:port or a port"
	case AddrPorts:
		w = "ip or ip:port, comma-separated"
	case Secret:
		w = "text"
	}
	if s.Off {
		w += ", or off"
	}
	return w
}

// formatDuration is d.String() without zero minutes and seconds: 24h,
// not 24h0m0s.
func formatDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}

// parseBool reads every boolean spelling the daemon has ever accepted.
func parseBool(s string) (v, ok bool) {
	switch strings.ToLower(s) {
	case "on", "true", "1":
		return true, true
	case "off", "false", "0":
		return false, true
	}
	return false, false
}

func (s *Setting[T]) durationBounds() (lo, hi time.Duration) {
	lo, _ = time.ParseDuration(s.Floor)
	hi, _ = time.ParseDuration(s.Ceiling)
	return lo, hi
}

func (s *Setting[T]) intBounds() (lo, hi int) {
	lo, _ = strconv.Atoi(s.Floor)
	hi, _ = strconv.Atoi(s.Ceiling)
	return lo, hi
}

// check reports a table mistake: bounds that do not parse or are not
// positive and ordered, a default outside the grammar, an enum without
// values, an "off" enum value in a setting that is not Off.
func (s *Setting[T]) check(prefix string) error {
	if !strings.HasPrefix(s.Name, prefix) || s.Name != strings.ToUpper(s.Name) || s.Doc == "" || s.Kind == 0 {
		return fmt.Errorf("setting %q: want an upper-case name with prefix %q, a kind and a doc", s.Name, prefix)
	}
	switch s.Kind {
	case Duration:
		lo, lerr := time.ParseDuration(s.Floor)
		hi, herr := time.ParseDuration(s.Ceiling)
		if lerr != nil || herr != nil || lo <= 0 || hi < lo {
			return fmt.Errorf("setting %s: bad bounds %q..%q", s.Name, s.Floor, s.Ceiling)
		}
	case Int:
		lo, lerr := strconv.Atoi(s.Floor)
		hi, herr := strconv.Atoi(s.Ceiling)
		if lerr != nil || herr != nil || lo <= 0 || hi < lo {
			return fmt.Errorf("setting %s: bad bounds %q..%q", s.Name, s.Floor, s.Ceiling)
		}
	case Enum:
		if len(s.Values) == 0 || (s.Off && slices.Contains(s.Values, "off")) {
			return fmt.Errorf("setting %s: want values (off among them only when not Off)", s.Name)
		}
	case ListenAddr:
		if s.Listen == nil {
			return fmt.Errorf("setting %s: a listen address needs Listen, its reader", s.Name)
		}
	}
	if s.Default != "" {
		if _, err := s.parse(strings.ReplaceAll(s.Default, "IFACE", "wg0")); err != nil {
			return fmt.Errorf("setting %s: default %q: %w", s.Name, s.Default, err)
		}
	}
	return nil
}
