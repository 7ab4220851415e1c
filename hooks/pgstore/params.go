package pgstore

import (
	"net/url"
	"strings"
)

// containsParam reports whether the URL s sets query parameter name.
func containsParam(s, name string) bool {
	u, err := url.Parse(s)
	if err != nil {
		return strings.Contains(s, name+"=")
	}
	return u.Query().Has(name)
}
