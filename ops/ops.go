package ops

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/wghooks/wghooks/device"
	"github.com/wghooks/wghooks/hooks"
)

// Config configures the operations endpoint. The zero value works.
type Config struct {
	// Interface, when set, labels every wghooks metric
	// (interface="wg0"), so one Prometheus job can scrape several
	// daemons. A label value is UTF-8: Start refuses a name that is
	// not, and Handler writes its invalid bytes as U+FFFD. Default: no
	// label.
	Interface string

	// Errorf receives errors of the HTTP server and of metric
	// collection. Default: discarded.
	Errorf hooks.Logf

	// NoProcessMetrics leaves out the Go runtime and process collectors.
	// Default: included, as Prometheus exporters usually do.
	NoProcessMetrics bool

	// MaxPeers caps the per-peer series (wireguard_*): past it, peers
	// with a handshake are kept first, then by public key, and
	// wghooks_peer_series_omitted counts the others. Negative: no
	// per-peer series. Default (0): DefaultMaxPeers.
	MaxPeers int

	// Token, when set, is the bearer token /metrics requires
	// ("Authorization: Bearer TOKEN"); /healthz and /readyz stay open
	// for balancers. It is compared in constant time and never logged.
	// ReadTokenFile reads one. Default: /metrics is open.
	Token string
}

// Handler returns the operations endpoint's handler for d.
func Handler(d *device.Device, cfg Config) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		if reason := alive(d); reason != "" {
			unavailable(w, reason)
			return
		}
		io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if reason := Ready(d); reason != "" {
			unavailable(w, reason)
			return
		}
		io.WriteString(w, "ready\n")
	})

	reg := prometheus.NewRegistry()
	iface := strings.ToValidUTF8(cfg.Interface, "\uFFFD")
	reg.MustRegister(newCollector(d, iface))
	if !cfg.NoProcessMetrics {
		reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	mux.Handle("GET /metrics", requireToken(cfg.Token, &metricsHandler{
		reg:    reg,
		peers:  newPeerSeries(d, iface, cfg.MaxPeers),
		errorf: cfg.Errorf,
	}))
	return mux
}

func unavailable(w http.ResponseWriter, reason string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusServiceUnavailable)
	io.WriteString(w, reason+"\n")
}

// alive returns "" while the device runs, or why it does not.
func alive(d *device.Device) string {
	select {
	case <-d.Done():
		return "device closed"
	default:
	}
	select {
	case <-d.Upstream().Wait():
		return "device stopped"
	default:
		return ""
	}
}

// Ready returns "" when d should receive new flows, or the reason it
// should not: closed, down, not configured (no private key yet), or
// draining.
func Ready(d *device.Device) string {
	if reason := alive(d); reason != "" {
		return reason
	}
	switch {
	case d.Draining():
		return "draining"
	case !d.Configured():
		return "not configured"
	case !d.IsUp():
		return "device down"
	}
	return ""
}

// ListenAddr normalizes an operations endpoint address: a bare port
// ("9586" or ":9586") listens on loopback; "host:port" is used as given,
// so listening on every interface takes an explicit "0.0.0.0:9586" or
// "[::]:9586".
func ListenAddr(s string) (string, error) {
	if s == "" {
		return "", fmt.Errorf("failed to parse listen address %q: empty", s)
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		if _, perr := strconv.ParseUint(s, 10, 16); perr != nil {
			return "", fmt.Errorf("failed to parse listen address %q: want host:port or a port: %w", s, err)
		}
		host, port = "", s
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return "", fmt.Errorf("failed to parse listen address %q: bad port %q", s, port)
	}
	if host == "" {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port), nil
}

// Server is a running operations endpoint.
type Server struct {
	srv  *http.Server
	ln   net.Listener
	done chan struct{}
}

// Start listens on addr (see ListenAddr) and serves Handler(d, cfg) until
// Close.
func Start(d *device.Device, addr string, cfg Config) (*Server, error) {
	if !utf8.ValidString(cfg.Interface) {
		return nil, fmt.Errorf("failed to label metrics with interface %q: not UTF-8", cfg.Interface)
	}
	a, err := ListenAddr(addr)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", a)
	if err != nil {
		return nil, fmt.Errorf("failed to listen for operations endpoint on %q: %w", a, err)
	}
	s := &Server{
		srv: &http.Server{
			Handler:           Handler(d, cfg),
			ReadHeaderTimeout: 5 * time.Second,
			ReadTimeout:       10 * time.Second,
			WriteTimeout:      30 * time.Second,
			IdleTimeout:       time.Minute,
		},
		ln:   ln,
		done: make(chan struct{}),
	}
	go func() {
		defer close(s.done)
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			cfg.Errorf.Printf("operations endpoint stopped: %v", err)
		}
	}()
	return s, nil
}

// Addr returns the address the endpoint listens on.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// URL returns the endpoint's base URL, "http://host:port".
func (s *Server) URL() string { return "http://" + s.ln.Addr().String() }

// Close stops the endpoint, letting requests in flight finish for up to a
// second. It is idempotent.
func (s *Server) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	err := s.srv.Shutdown(ctx)
	if err != nil {
		s.srv.Close()
	}
	<-s.done
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}
