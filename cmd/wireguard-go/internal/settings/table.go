package settings

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Table is a daemon's settings, each declared once.
type Table[T any] struct {
	// Prefix starts every setting's name ("WGHOOKS_"); an environment
	// variable with it that names no setting is an error.
	Prefix string
	// FileDir names the EnvOnly setting that holds the directory of the
	// per-interface file, IFACE.conf.
	FileDir  string
	Settings []Setting[T]
}

// Check reports a mistake in the table itself.
func (t *Table[T]) Check() error {
	seen := map[string]bool{}
	for i := range t.Settings {
		s := &t.Settings[i]
		if err := s.check(t.Prefix); err != nil {
			return err
		}
		if seen[s.Name] {
			return fmt.Errorf("setting %s declared twice", s.Name)
		}
		seen[s.Name] = true
	}
	if d := t.lookup(t.FileDir); d == nil || !d.EnvOnly || d.Kind != Path {
		return fmt.Errorf("file directory %q: want an EnvOnly path setting", t.FileDir)
	}
	return nil
}

func (t *Table[T]) lookup(name string) *Setting[T] {
	for i := range t.Settings {
		if t.Settings[i].Name == name {
			return &t.Settings[i]
		}
	}
	return nil
}

// Values are the settings as read, in table order.
type Values[T any] struct {
	table *Table[T]
	vals  []Value
	// File is the per-interface file read (it may not exist).
	File string
}

// Get returns the value of the named setting; it panics on a name not in
// the table, which is a programming error.
func (vs *Values[T]) Get(name string) Value {
	for i := range vs.table.Settings {
		if vs.table.Settings[i].Name == name {
			return vs.vals[i]
		}
	}
	panic("settings: no setting " + name)
}

// Apply stores every value in dst, in table order: values a source gave,
// and defaults unless they are Builtin. Errors name the setting.
func (vs *Values[T]) Apply(dst *T) error {
	for i := range vs.table.Settings {
		s, v := &vs.table.Settings[i], vs.vals[i]
		if s.Set == nil || (v.Source == FromDefault && (s.Builtin || !v.IsSet())) {
			continue
		}
		if err := s.Set(dst, v); err != nil {
			return fmt.Errorf("failed to apply %s: %w", s.describe(v), err)
		}
	}
	return nil
}

// describe names a setting and where its value came from, quoting the
// value unless it is secret.
func (s *Setting[T]) describe(v Value) string {
	text := fmt.Sprintf("%q", v.Text)
	switch {
	case s.Kind == Secret:
		text = "(hidden)"
	case s.Redact != nil:
		text = fmt.Sprintf("%q", s.Redact(v.Text))
	}
	if v.Source == FromFile {
		return fmt.Sprintf("%s: %s=%s", v.Where, s.Name, text)
	}
	return s.Name + "=" + text
}

// Read resolves every setting for interface iface from environ
// ("NAME=value" pairs, as os.Environ returns) and from the file
// FileDir/IFACE.conf; the environment wins over the file, the file over
// the default. A missing file is no error; an unreadable one is.
func (t *Table[T]) Read(iface string, environ []string) (*Values[T], error) {
	vs := &Values[T]{table: t, vals: make([]Value, len(t.Settings))}
	env, err := t.readEnv(environ)
	if err != nil {
		return nil, err
	}
	dir := env[t.FileDir]
	if dir == "" {
		dir = t.lookup(t.FileDir).Default
	}
	vs.File = filepath.Join(dir, iface+".conf")
	file, err := t.readFile(vs.File)
	if err != nil {
		return nil, err
	}
	for i := range t.Settings {
		s := &t.Settings[i]
		text, src, where := s.Default, FromDefault, ""
		if s.Kind == Path {
			text = strings.ReplaceAll(text, "IFACE", iface)
		}
		if l, ok := file[Key(t.Prefix, s.Name)]; ok {
			text, src, where = l.value, FromFile, fmt.Sprintf("%s:%d", vs.File, l.line)
		}
		if e, ok := env[s.Name]; ok {
			text, src, where = e, FromEnv, ""
		}
		if text == "" {
			vs.vals[i] = Value{Source: src, Where: where}
			continue
		}
		v, err := s.parse(text)
		if err != nil {
			shown := fmt.Sprintf("%q", text)
			if s.Kind == Secret {
				shown = "(hidden)"
			}
			switch src {
			case FromFile:
				return nil, fmt.Errorf("failed to parse %s: %s=%s: %w", where, Key(t.Prefix, s.Name), shown, err)
			case FromDefault:
				return nil, fmt.Errorf("failed to parse the default of %s=%s: %w", s.Name, shown, err)
			}
			return nil, fmt.Errorf("failed to parse %s=%s: %w", s.Name, shown, err)
		}
		v.Source, v.Where = src, where
		vs.vals[i] = v
	}
	return vs, nil
}

// readEnv picks the table's variables out of environ: non-empty ones,
// and rejects a name with the prefix that is not a setting.
func (t *Table[T]) readEnv(environ []string) (map[string]string, error) {
	env := map[string]string{}
	for _, kv := range environ {
		name, value, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(name, t.Prefix) {
			continue
		}
		if t.lookup(name) == nil {
			return nil, fmt.Errorf("%s: unknown setting%s", name, t.suggest(name, func(s *Setting[T]) string { return s.Name }))
		}
		if value != "" {
			env[name] = value
		}
	}
	return env, nil
}

type fileLine struct {
	value string
	line  int
}

// readFile reads "key = value" lines; a missing file reads as empty.
func (t *Table[T]) readFile(path string) (map[string]fileLine, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("failed to read settings file %q: %w", path, err)
	}
	lines, err := parseFile(string(b))
	if err != nil {
		return nil, fmt.Errorf("failed to parse %s:%w", path, err)
	}
	for key, l := range lines {
		s := t.lookup(t.Prefix + strings.ToUpper(key))
		if s == nil || key != strings.ToLower(key) {
			return nil, fmt.Errorf("failed to parse %s:%d: %q: unknown setting%s", path, l.line, key,
				t.suggest(key, func(s *Setting[T]) string { return Key(t.Prefix, s.Name) }))
		}
		if s.EnvOnly {
			return nil, fmt.Errorf("failed to parse %s:%d: %q: only the environment (%s) can set it", path, l.line, key, s.Name)
		}
	}
	return lines, nil
}

// parseFile reads the file's lines. Errors start with the line number.
func parseFile(text string) (map[string]fileLine, error) {
	out := map[string]fileLine{}
	for i, line := range strings.Split(text, "\n") {
		n := i + 1
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' {
			continue
		}
		key, value, ok := strings.Cut(line, "=")
		key, value = strings.TrimSpace(key), strings.TrimSpace(value)
		if !ok || key == "" || strings.ContainsAny(key, " \t") {
			return nil, fmt.Errorf("%d: %q: want key = value", n, line)
		}
		if prev, dup := out[key]; dup {
			return nil, fmt.Errorf("%d: %q: already set on line %d", n, key, prev.line)
		}
		out[key] = fileLine{value: value, line: n}
	}
	return out, nil
}

// suggest returns " (did you mean X?)" for the nearest name, if close.
func (t *Table[T]) suggest(got string, name func(*Setting[T]) string) string {
	best, bestD := "", 4 // more edits than this is no typo
	for i := range t.Settings {
		s := &t.Settings[i]
		if d := distance(strings.ToLower(got), strings.ToLower(name(s))); d < bestD {
			best, bestD = name(s), d
		}
	}
	if best == "" {
		return ""
	}
	return " (did you mean " + best + "?)"
}

// distance is the Levenshtein distance between a and b.
func distance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
