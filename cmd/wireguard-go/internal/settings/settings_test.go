package settings

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wghooks/wghooks/ops"
)

type dst struct {
	on    bool
	every time.Duration
	n     int
	mode  string
	path  string
}

func testTable() *Table[dst] {
	return &Table[dst]{
		Prefix:  "T_",
		FileDir: "T_DIR",
		Settings: []Setting[dst]{
			{Name: "T_DIR", Kind: Path, Default: "/nonexistent/t", EnvOnly: true, Doc: "file directory"},
			{Name: "T_ON", Kind: Bool, Default: "on", Doc: "a switch", Set: func(d *dst, v Value) error { d.on = v.Bool; return nil }},
			{Name: "T_EVERY", Kind: Duration, Default: "30s", Off: true, Floor: "10ms", Ceiling: "1h", Doc: "an interval",
				Set: func(d *dst, v Value) error {
					d.every = v.Dur
					if v.Off {
						d.every = -1
					}
					return nil
				}},
			{Name: "T_N", Kind: Int, Default: "5", Builtin: true, Floor: "1", Ceiling: "100", Doc: "a count", Set: func(d *dst, v Value) error { d.n = v.Int; return nil }},
			{Name: "T_MODE", Kind: Enum, Values: []string{"auto", "on", "off"}, Default: "auto", Doc: "a mode", Set: func(d *dst, v Value) error { d.mode = v.Text; return nil }},
			{Name: "T_PATH", Kind: Path, Default: "/var/lib/t/IFACE.json", Off: true, Doc: "a file", Set: func(d *dst, v Value) error { d.path = v.Text; return nil }},
			{Name: "T_SECRET", Kind: Secret, Doc: "a token"},
			{Name: "T_HTTP", Kind: ListenAddr, Listen: ops.ListenAddr, Off: true, Default: "off", Doc: "a listener"},
			{Name: "T_DNS", Kind: AddrPorts, Port: 53, Doc: "servers"},
			{Name: "T_URL", Kind: URL, Doc: "a URL"},
		},
	}
}

func read(t *testing.T, tab *Table[dst], environ ...string) (*Values[dst], dst, error) {
	t.Helper()
	var d dst
	vs, err := tab.Read("wg7", environ)
	if err != nil {
		return nil, d, err
	}
	return vs, d, vs.Apply(&d)
}

func TestTableCheck(t *testing.T) {
	if err := testTable().Check(); err != nil {
		t.Fatal(err)
	}
	bad := testTable()
	bad.Settings[2].Floor = "0s"
	if err := bad.Check(); err == nil {
		t.Error("a zero floor passed the check")
	}
	bad = testTable()
	bad.Settings[3].Default = "500"
	if err := bad.Check(); err == nil {
		t.Error("a default above the ceiling passed the check")
	}
}

func TestDefaults(t *testing.T) {
	vs, d, err := read(t, testTable())
	if err != nil {
		t.Fatal(err)
	}
	// T_N is Builtin: the destination keeps its zero value.
	if !d.on || d.every != 30*time.Second || d.n != 0 || d.mode != "auto" || d.path != "/var/lib/t/wg7.json" {
		t.Fatalf("defaults: %+v", d)
	}
	if v := vs.Get("T_N"); v.Int != 5 || v.Source != FromDefault {
		t.Fatalf("T_N: %+v", v)
	}
	if vs.File != "/nonexistent/t/wg7.conf" {
		t.Fatalf("file %q", vs.File)
	}
}

func TestGrammar(t *testing.T) {
	for _, c := range []struct {
		name, in, want string
	}{
		{"T_ON", "on", "on"}, {"T_ON", "TRUE", "on"}, {"T_ON", "1", "on"},
		{"T_ON", "off", "off"}, {"T_ON", "false", "off"}, {"T_ON", "0", "off"},
		{"T_EVERY", "10ms", "10ms"}, {"T_EVERY", "1h", "1h"}, {"T_EVERY", "59m60s", "1h"}, {"T_EVERY", "61s", "1m1s"}, {"T_EVERY", "off", "off"}, {"T_EVERY", "0", "off"},
		{"T_N", "1", "1"}, {"T_N", "100", "100"},
		{"T_MODE", "Auto", "auto"}, {"T_MODE", "off", "off"},
		{"T_PATH", "off", "off"}, {"T_PATH", "/x y", "/x y"},
		{"T_HTTP", "9586", "127.0.0.1:9586"}, {"T_HTTP", ":9586", "127.0.0.1:9586"}, {"T_HTTP", "[::1]:80", "[::1]:80"}, {"T_HTTP", "off", "off"},
		{"T_DNS", "198.18.0.53, 198.18.0.54:5353", "198.18.0.53:53,198.18.0.54:5353"},
		{"T_URL", "https://cp.example/peers?addr={addr}", "https://cp.example/peers?addr={addr}"},
	} {
		vs, _, err := read(t, testTable(), c.name+"="+c.in)
		if err != nil {
			t.Errorf("%s=%q: %v", c.name, c.in, err)
			continue
		}
		if v := vs.Get(c.name); v.Text != c.want || v.Source != FromEnv {
			t.Errorf("%s=%q: %q from %v, want %q from the environment", c.name, c.in, v.Text, v.Source, c.want)
		}
	}
}

func TestBounds(t *testing.T) {
	for _, kv := range []string{
		"T_EVERY=1ns", "T_EVERY=9ms", "T_EVERY=61m", "T_EVERY=-1s", "T_EVERY=soon",
		"T_N=0", "T_N=101", "T_N=-3", "T_N=off",
		"T_ON=yes", "T_ON=maybe", "T_MODE=sometimes", "T_HTTP=nope", "T_HTTP=host:99999",
		"T_DNS=198.18.0.53,not-an-ip", "T_URL=ftp://x", "T_URL=/relative",
	} {
		name, value, _ := strings.Cut(kv, "=")
		_, _, err := read(t, testTable(), kv)
		if err == nil || !strings.Contains(err.Error(), name) || !strings.Contains(err.Error(), `"`+value+`"`) {
			t.Errorf("%s: error %v, want one naming the setting and quoting the value", kv, err)
		}
	}
}

func TestUnknownEnv(t *testing.T) {
	_, _, err := read(t, testTable(), "T_EVRY=1s")
	if err == nil || err.Error() != "T_EVRY: unknown setting (did you mean T_EVERY?)" {
		t.Fatalf("unknown name: %v", err)
	}
	_, _, err = read(t, testTable(), "T_SOMETHING_ELSE_ENTIRELY=1")
	if err == nil || err.Error() != "T_SOMETHING_ELSE_ENTIRELY: unknown setting" {
		t.Fatalf("unknown name, nothing close: %v", err)
	}
	// Other programs' variables and empty values are not settings.
	if _, _, err := read(t, testTable(), "OTHER=1", "T_EVERY="); err != nil {
		t.Fatal(err)
	}
}

func writeFile(t *testing.T, text string) (*Table[dst], string) {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "wg7.conf")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return testTable(), "T_DIR=" + dir
}

func TestFile(t *testing.T) {
	tab, dir := writeFile(t, "# comment\n\n  every = 5s\nn=7\nurl = https://x.example/a#frag\nsecret = s3cret\n")
	vs, d, err := read(t, tab, dir, "T_N=9")
	if err != nil {
		t.Fatal(err)
	}
	if d.every != 5*time.Second || d.n != 9 {
		t.Fatalf("%+v", d)
	}
	// The environment wins over the file; the file over the default.
	if v := vs.Get("T_N"); v.Source != FromEnv || v.Int != 9 {
		t.Errorf("T_N: %+v", v)
	}
	if v := vs.Get("T_EVERY"); v.Source != FromFile || !strings.HasSuffix(v.Where, "wg7.conf:3") {
		t.Errorf("T_EVERY: %+v", v)
	}
	if v := vs.Get("T_URL"); v.Text != "https://x.example/a#frag" {
		t.Errorf("T_URL: %+v", v)
	}
	var b strings.Builder
	if err := vs.Print(&b); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{"T_EVERY   5s", "file " + vs.File + ":3", "T_N       9", "environment", "T_SECRET  (hidden)", "T_DNS     -"} {
		if !strings.Contains(out, want) {
			t.Errorf("listing lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "s3cret") {
		t.Errorf("listing shows the secret:\n%s", out)
	}
}

func TestFileErrors(t *testing.T) {
	for text, want := range map[string]string{
		"evrey = 5s\n":         `wg7.conf:1: "evrey": unknown setting (did you mean every?)`,
		"every = 1ns\n":        `wg7.conf:1: every="1ns": want a duration from 10ms to 1h, or off`,
		"dir = /tmp\n":         `wg7.conf:1: "dir": only the environment (T_DIR) can set it`,
		"on\n":                 `wg7.conf:1: "on": want key = value`,
		"n = 1\nn = 2\n":       `wg7.conf:2: "n": already set on line 1`,
		"secret\t= ;oops=1\nx": `wg7.conf:2: "x": want key = value`,
	} {
		tab, dir := writeFile(t, text)
		_, _, err := read(t, tab, dir)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("file %q: error %v, want %q", text, err, want)
		}
	}
	// A file the daemon cannot read (a directory here) is an error; a
	// missing one is not.
	dir := t.TempDir()
	os.Mkdir(filepath.Join(dir, "wg7.conf"), 0o700)
	if _, _, err := read(t, testTable(), "T_DIR="+dir); err == nil || !strings.Contains(err.Error(), "failed to read settings file") {
		t.Errorf("unreadable file: %v", err)
	}
	if _, _, err := read(t, testTable(), "T_DIR="+t.TempDir()); err != nil {
		t.Errorf("missing file: %v", err)
	}
}

func TestSecretNotInErrors(t *testing.T) {
	tab := testTable()
	tab.Settings[6].Set = func(*dst, Value) error { return os.ErrInvalid }
	_, _, err := read(t, tab, "T_SECRET=hunter2")
	if err == nil || strings.Contains(err.Error(), "hunter2") || !strings.Contains(err.Error(), "T_SECRET") {
		t.Fatalf("error %v: want one naming the setting, not its value", err)
	}
}

func TestMarkdown(t *testing.T) {
	md := testTable().Markdown()
	for _, want := range []string{
		"| `T_EVERY` | `every` | a duration from 10ms to 1h, or off | `30s` | an interval |",
		"| `T_DIR` | (environment only) |",
		"| `T_MODE` | `mode` | auto, on or off | `auto` |",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
}

func FuzzParseFile(f *testing.F) {
	f.Add("a = b\n# c\n\nd=e")
	f.Add("=\n==\n a b = c")
	f.Fuzz(func(t *testing.T, text string) {
		lines, err := parseFile(text)
		if err != nil {
			return
		}
		for k, l := range lines {
			if k == "" || strings.ContainsAny(k, " \t=") || l.line < 1 {
				t.Fatalf("key %q at line %d", k, l.line)
			}
		}
	})
}

// FuzzGrammar checks that every kind's canonical text reads back as
// itself: what --settings prints can be pasted into the file.
func FuzzGrammar(f *testing.F) {
	for _, s := range []string{"on", "0", "1h30m", "59m60s", "off", "9586", "[::1]:80", "198.18.0.1, fd00::1", "https://x.example/{addr}", "auto", "42"} {
		f.Add(s)
	}
	tab := testTable()
	f.Fuzz(func(t *testing.T, text string) {
		for i := range tab.Settings {
			s := &tab.Settings[i]
			v, err := s.parse(text)
			if err != nil {
				continue
			}
			again, err := s.parse(v.Text)
			if err != nil || again.Text != v.Text || again.Dur != v.Dur || again.Int != v.Int || again.Off != v.Off || again.Bool != v.Bool {
				t.Fatalf("%s: %q reads as %+v, which reads back as %+v, %v", s.Name, text, v, again, err)
			}
		}
	})
}
