// Package settings reads a daemon's settings from one table: each setting
// is declared once (name, kind, default, floor, ceiling, one line of doc
// and where its value goes) and read from the environment, from a
// per-interface file and from its default, in that order of precedence.
//
// One grammar per kind, for every setting of that kind:
//
//	Bool        on|off|true|false|1|0
//	Duration    Go duration syntax (300ms, 30s, 1h30m) within the
//	            setting's floor and ceiling; "off" (or "0") where the
//	            setting can be off
//	Int         a decimal number within the floor and ceiling; "off"
//	            where the setting can be off
//	Enum        one of the setting's values
//	Path        a file path; "off" where the setting can be off
//	URL         an absolute http or https URL
//	ListenAddr  host:port, or a bare port (on 127.0.0.1); "off" where the
//	            setting can be off
//	AddrPorts   comma-separated ip or ip:port (the setting's port when
//	            none is given)
//	Secret      any text; printed only as "(hidden)"
//
// The words off, on, true, false and enum values are case-insensitive.
// An empty value, in either source, leaves the setting unset.
//
// Names: a setting is named by its environment variable (WGHOOKS_STATE_FILE);
// its file key is the name without the table's prefix, in lower case
// (state_file). The file holds "key = value" lines; a line whose first
// non-blank character is '#' is a comment ('#' elsewhere is part of the
// value, as URLs may hold one). An environment variable carrying the
// table's prefix that names no setting, an unknown file key, a key given
// twice and a value outside its kind's grammar or its bounds are errors.
package settings
