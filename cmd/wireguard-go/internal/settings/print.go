package settings

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// Print writes one line per setting: name, effective value and where it
// came from. Secrets print as "(hidden)", unset values as "-".
func (vs *Values[T]) Print(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintf(tw, "SETTING\tVALUE\tSOURCE\n")
	for i := range vs.table.Settings {
		s, v := &vs.table.Settings[i], vs.vals[i]
		text := v.Text
		switch {
		case !v.IsSet():
			text = "-"
		case s.Kind == Secret:
			text = "(hidden)"
		case s.Redact != nil:
			text = s.Redact(text)
		}
		src := v.Source.String()
		if v.Source == FromFile {
			src += " " + v.Where
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", s.Name, text, src)
	}
	return tw.Flush()
}

// Markdown returns the table as a Markdown table for the docs.
func (t *Table[T]) Markdown() string {
	var b strings.Builder
	b.WriteString("| Environment | File key | Value | Default | What it does |\n")
	b.WriteString("|---|---|---|---|---|\n")
	for i := range t.Settings {
		s := &t.Settings[i]
		key := "`" + Key(t.Prefix, s.Name) + "`"
		if s.EnvOnly {
			key = "(environment only)"
		}
		def := "-"
		if s.Default != "" {
			def = "`" + s.Default + "`"
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s | %s |\n", s.Name, key, s.want(), def, strings.ReplaceAll(s.Doc, "|", `\|`))
	}
	return b.String()
}
