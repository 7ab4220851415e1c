package ops

import (
	"bytes"
	"compress/gzip"
	"net/http"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"

	"github.com/wghooks/wghooks/hooks"
)

// metricsHandler serves /metrics in Prometheus' text format (version
// 0.0.4, which every Prometheus accepts): the registry's families
// (wghooks_*, go_*, process_*), then the per-peer series.
type metricsHandler struct {
	reg    prometheus.Gatherer
	peers  *peerSeries
	errorf hooks.Logf
}

// buffers hold responses between scrapes (several MB at 10,000 peers).
var buffers = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// gzipWriters compress at the fastest level: a response is megabytes of
// text that any level shrinks about fourfold.
var gzipWriters = sync.Pool{New: func() any {
	w, _ := gzip.NewWriterLevel(nil, gzip.BestSpeed)
	return w
}}

func (h *metricsHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	mfs, err := h.reg.Gather()
	if err != nil {
		// Gather returns what it could; serve that and say what failed.
		h.errorf.Printf("metrics: %v", err)
	}
	buf := buffers.Get().(*bytes.Buffer)
	buf.Reset()
	enc := expfmt.NewEncoder(buf, expfmt.NewFormat(expfmt.TypeTextPlain))
	for _, mf := range mfs {
		if err := enc.Encode(mf); err != nil {
			h.errorf.Printf("metrics: failed to encode %s: %v", mf.GetName(), err)
		}
	}
	body, err := h.peers.appendText(buf.Bytes())
	if err != nil {
		h.errorf.Printf("metrics: %v", err)
	}
	defer buffers.Put(bytes.NewBuffer(body[:0])) // with the capacity it grew to

	w.Header().Set("Content-Type", string(expfmt.NewFormat(expfmt.TypeTextPlain)))
	if !acceptsGzip(r) {
		w.Write(body)
		return
	}
	w.Header().Set("Content-Encoding", "gzip")
	gz := gzipWriters.Get().(*gzip.Writer)
	defer gzipWriters.Put(gz)
	gz.Reset(w)
	gz.Write(body)
	gz.Close()
}

func acceptsGzip(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept-Encoding"), ",") {
		if enc, _, _ := strings.Cut(strings.TrimSpace(part), ";"); enc == "gzip" {
			return true
		}
	}
	return false
}
