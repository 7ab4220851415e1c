package pgstore

import (
	"fmt"
	"net/url"
	"regexp"
	"strings"

	"github.com/jackc/pgx/v5/pgxpool"
)

// IsURL reports whether s names a PostgreSQL store (postgres:// or
// postgresql://) rather than a SQLite file.
func IsURL(s string) bool {
	l := strings.ToLower(strings.TrimSpace(s))
	return strings.HasPrefix(l, "postgres://") || strings.HasPrefix(l, "postgresql://")
}

// userinfoPassword matches the password of a URL that net/url cannot
// parse, so even a broken URL is printed without it.
var userinfoPassword = regexp.MustCompile(`^([a-zA-Z][a-zA-Z0-9+.-]*://[^:/@]*):[^@]*@`)

// Redact returns s with its password (in the user info or a password=
// parameter) replaced by "xxxxx", for logs and errors.
func Redact(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return userinfoPassword.ReplaceAllString(s, "${1}:xxxxx@")
	}
	changed := false
	if _, has := u.User.Password(); has {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
		changed = true
	}
	if q := u.Query(); q.Has("password") {
		q.Set("password", "xxxxx")
		u.RawQuery = q.Encode()
		changed = true
	}
	if !changed {
		return s // nothing secret: as written (a file path stays a path)
	}
	return u.String()
}

// password is s's password, "" when it has none or does not parse.
func password(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return ""
	}
	if p, ok := u.User.Password(); ok {
		return p
	}
	return u.Query().Get("password")
}

// ParseURL checks a store URL and returns its pool configuration. The
// error names the URL with its password redacted.
func ParseURL(s string) (*pgxpool.Config, error) {
	if !IsURL(s) {
		return nil, fmt.Errorf("failed to parse peer store URL %q: want postgres:// or postgresql://", Redact(s))
	}
	if _, err := url.Parse(s); err != nil {
		return nil, fmt.Errorf("failed to parse peer store URL %q: %s", Redact(s), scrub(err.Error(), s))
	}
	cfg, err := pgxpool.ParseConfig(s)
	if err != nil {
		return nil, fmt.Errorf("failed to parse peer store URL %q: %s", Redact(s), scrub(err.Error(), s))
	}
	return cfg, nil
}

// scrub removes s's password (and s itself) from text.
func scrub(text, s string) string {
	text = strings.ReplaceAll(text, s, Redact(s))
	if p := password(s); p != "" {
		text = strings.ReplaceAll(text, p, "xxxxx")
		text = strings.ReplaceAll(text, url.QueryEscape(p), "xxxxx")
	}
	return text
}
