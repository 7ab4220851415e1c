package jit

// Repeated failure lines. A failing provider fails every lookup the same
// way, and every lookup of a new key is a line: a thousand in a few
// seconds say nothing the first few did not. The first failBurst lines
// of a kind are logged as they are (a few keys to look at; two faults of
// a provider that read alike except for the key each keep their line);
// more of the same kind within failLogInterval are only counted, and one
// summary line per interval says how many there were. Lines of one kind
// differ only in the key they name, which is blanked to tell the kind
// (failureKind).

import (
	"encoding/base64"
	"encoding/hex"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/wghooks/wghooks/device/feature"
)

const (
	// failBurst is how many lines of a kind are logged as they are
	// before the rest are counted.
	failBurst = 5
	// failLogInterval is how often at most a summary line is logged per
	// kind of failure.
	failLogInterval = 10 * time.Second
	// maxFailKinds bounds the kinds tracked; past it lines are logged as
	// they come.
	maxFailKinds = 256
)

// failureLog aggregates repeated identical failure lines. Its lock is a
// leaf; the lines are logged after it is released.
type failureLog struct {
	mu    sync.Mutex
	kinds map[string]*failKind
}

type failKind struct {
	logf       func(string, ...any) // where the first line went
	since      time.Time            // start of the interval
	logged     int                  // lines logged as they are since then
	suppressed int                  // lines counted, not logged, since then
}

// failed logs line, which names key, through logf unless failBurst lines
// of its kind were logged within failLogInterval before now; then it is
// only counted, and the first failure of the kind after the interval logs
// the summary of them all (and the burst stays spent while they go on).
func (f *failureLog) failed(logf func(string, ...any), key feature.Key, line string, now time.Time) {
	kind := failureKind(key, line)
	f.mu.Lock()
	if f.kinds == nil {
		f.kinds = make(map[string]*failKind)
	}
	k := f.kinds[kind]
	switch {
	case k == nil:
		if len(f.kinds) < maxFailKinds {
			f.kinds[kind] = &failKind{logf: logf, since: now, logged: 1}
		}
	case now.Sub(k.since) < failLogInterval:
		if k.logged >= failBurst {
			k.suppressed++
			f.mu.Unlock()
			return
		}
		k.logged++
	case k.suppressed > 0:
		n, since := k.suppressed+1, k.since
		k.since, k.suppressed = now, 0
		f.mu.Unlock()
		logSummary(logf, n, now.Sub(since), kind)
		return
	default:
		k.since, k.logged = now, 1
	}
	f.mu.Unlock()
	logf("%s", line)
}

// flush logs the summary of each kind whose interval ended with lines
// counted, and forgets the kinds that went quiet. Housekeeping calls it.
func (f *failureLog) flush(now time.Time) {
	type summary struct {
		logf func(string, ...any)
		kind string
		n    int
		d    time.Duration
	}
	var out []summary
	f.mu.Lock()
	for kind, k := range f.kinds {
		switch {
		case now.Sub(k.since) < failLogInterval:
		case k.suppressed > 0:
			out = append(out, summary{k.logf, kind, k.suppressed, now.Sub(k.since)})
			k.since, k.logged, k.suppressed = now, failBurst, 0
		default:
			delete(f.kinds, kind)
		}
	}
	f.mu.Unlock()
	for _, s := range out {
		logSummary(s.logf, s.n, s.d, s.kind)
	}
}

func logSummary(logf func(string, ...any), n int, d time.Duration, kind string) {
	logf("jit: %d more lookups failed the same way in the last %v: %s", n, d.Round(time.Second), kind)
}

// failureKind is line with key's names blanked: its short name, and its
// base64 (plain and escaped for a URL) and hex forms, which a provider's
// error may quote.
func failureKind(key feature.Key, line string) string {
	b64 := feature.EncodeKey(key)
	r := strings.NewReplacer(
		feature.ShortKey(key), "peer(…)",
		b64, "…",
		url.QueryEscape(b64), "…",
		url.PathEscape(b64), "…",
		base64.URLEncoding.EncodeToString(key[:]), "…",
		hex.EncodeToString(key[:]), "…",
	)
	return r.Replace(line)
}
