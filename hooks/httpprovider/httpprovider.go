// Package httpprovider asks an operator's control plane about peers over
// HTTP: the hooks.Provider for fleets of gateways sharing one source of
// truth.
//
// The protocol is one request per lookup:
//
//	GET <URL>/<key>            Authorization: Bearer <token>
//
// where <key> is the peer's public key in URL-safe base64 ("-" and "_"
// for "+" and "/", with padding). A URL containing "{key}" gets the key
// there instead; "{hex}" gets it in hex. The answers:
//
//	200 with a JSON Peer          the peer's configuration
//	404 or 410                    unknown key (cached negatively by the device)
//	anything else, or no answer   an error: nothing installed, installed
//	                              peers kept
//
// With Config.AddrURL set, the provider also answers which peer holds a
// tunnel address (hooks.AddrProvider, the device's outbound side):
//
//	GET <AddrURL with {addr} replaced by the address>   same header
//
// e.g. https://cp.example/peers?addr={addr}. The answers are the same,
// except that a 200 must name the peer (public_key), and 501 means the
// control plane cannot look up addresses (the outbound side turns off).
//
// Handler serves the same protocol from any hooks.Provider, so a control
// plane (or a test) can be a few lines; a GET with an "addr" query
// parameter is an address lookup.
//
// A redirect is followed only to the same scheme, host and port; any
// other fails the lookup (the request carries the token, the answer
// preshared keys).
package httpprovider

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/wghooks/wghooks/hooks"
)

// Peer is the JSON body of a 200 answer. Keys are standard base64, as
// `wg` prints them.
type Peer struct {
	PublicKey           string   `json:"public_key"`
	AllowedIPs          []string `json:"allowed_ips"`
	PresharedKey        string   `json:"preshared_key,omitempty"`
	PersistentKeepalive int      `json:"persistent_keepalive,omitempty"` // seconds
	Endpoint            string   `json:"endpoint,omitempty"`             // ip:port
}

// maxBody bounds the answer a provider reads.
const maxBody = 64 << 10

// Config configures a Provider.
type Config struct {
	// URL is the base URL of the control plane's peer resource. Required.
	URL string
	// Token is sent as "Authorization: Bearer <Token>". Default: none.
	Token string
	// Timeout bounds one request, on top of the device's own lookup
	// timeout. Default 5 s.
	Timeout time.Duration
	// Client sends the requests. Default: a client with Timeout.
	Client *http.Client
	// AddrURL is where to ask which peer holds a tunnel address, with
	// "{addr}" where the address goes. Default: none, and LookupAddr
	// fails with errors.ErrUnsupported.
	AddrURL string
	// AllowPlaintext permits an http:// URL or AddrURL to a host other
	// than a loopback address or "localhost". Default false: New refuses
	// one, as the request carries Token and the answer preshared keys.
	AllowPlaintext bool
}

// Provider is a hooks.Provider backed by an HTTP control plane.
type Provider struct {
	cfg    Config
	client *http.Client
	redact redactor
}

var (
	_ hooks.Provider     = (*Provider)(nil)
	_ hooks.AddrProvider = (*Provider)(nil)
)

// New checks cfg and returns a Provider.
func New(cfg Config) (*Provider, error) {
	r := newRedactor(cfg)
	if cfg.URL == "" {
		return nil, r.errorf("failed to create HTTP provider: no URL")
	}
	if !strings.HasPrefix(cfg.URL, "http://") && !strings.HasPrefix(cfg.URL, "https://") {
		return nil, r.errorf("failed to create HTTP provider: URL %q is not http:// or https://", cfg.URL)
	}
	if cfg.AddrURL != "" && (!strings.Contains(cfg.AddrURL, "{addr}") ||
		(!strings.HasPrefix(cfg.AddrURL, "http://") && !strings.HasPrefix(cfg.AddrURL, "https://"))) {
		return nil, r.errorf("failed to create HTTP provider: address URL %q is not http:// or https:// with {addr}", cfg.AddrURL)
	}
	for _, u := range []string{cfg.URL, cfg.AddrURL} {
		if err := checkPlaintext(u, cfg.AllowPlaintext); err != nil {
			return nil, r.errorf("failed to create HTTP provider: %v", err)
		}
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 5 * time.Second
	}
	c := &http.Client{Timeout: cfg.Timeout}
	if cfg.Client != nil {
		cc := *cfg.Client
		c = &cc
	}
	c.CheckRedirect = sameOrigin(c.CheckRedirect)
	return &Provider{cfg: cfg, client: c, redact: r}, nil
}

// checkPlaintext refuses an http:// URL to a host that is not loopback,
// unless allow. "" passes.
func checkPlaintext(raw string, allow bool) error {
	if raw == "" {
		return nil
	}
	u, err := url.Parse(strings.NewReplacer("{key}", "k", "{hex}", "k", "{addr}", "a").Replace(raw))
	if err != nil || u.Host == "" {
		return fmt.Errorf("URL %q is not a valid URL", raw)
	}
	if u.Scheme != "http" || allow {
		return nil
	}
	h := u.Hostname()
	if ip, err := netip.ParseAddr(h); (err == nil && ip.Unmap().IsLoopback()) || strings.EqualFold(h, "localhost") {
		return nil
	}
	return fmt.Errorf("URL %q is plaintext http:// to %q, which is not loopback: use https:// or allow plaintext explicitly", raw, h)
}

// sameOrigin wraps a client's redirect policy (nil: Go's default of at
// most 10) so that a redirect changing the scheme, host or port fails the
// request: an https:// control plane sending the client to http:// would
// otherwise receive the token in clear and have its plaintext answer
// believed.
func sameOrigin(next func(*http.Request, []*http.Request) error) func(*http.Request, []*http.Request) error {
	return func(req *http.Request, via []*http.Request) error {
		from := via[0].URL
		if req.URL.Scheme != from.Scheme || !strings.EqualFold(req.URL.Hostname(), from.Hostname()) ||
			portOf(req.URL) != portOf(from) {
			return fmt.Errorf("refusing redirect from %s://%s to %s://%s: scheme, host or port changed",
				from.Scheme, from.Host, req.URL.Scheme, req.URL.Host)
		}
		if next != nil {
			return next(req, via)
		}
		if len(via) >= 10 {
			return errors.New("stopped after 10 redirects")
		}
		return nil
	}
}

// portOf returns u's port, the scheme's default when it names none.
func portOf(u *url.URL) string {
	if p := u.Port(); p != "" {
		return p
	}
	if u.Scheme == "https" {
		return "443"
	}
	return "80"
}

// redactor keeps secrets out of error text: the token and the URLs'
// passwords (userinfo), raw and unescaped.
type redactor []string

func newRedactor(cfg Config) redactor {
	var r redactor
	add := func(v string) {
		if v != "" {
			r = append(r, v)
		}
	}
	add(cfg.Token)
	for _, raw := range []string{cfg.URL, cfg.AddrURL} {
		_, rest, ok := strings.Cut(raw, "://")
		if !ok {
			rest = raw
		}
		if i := strings.IndexAny(rest, "/?#"); i >= 0 {
			rest = rest[:i]
		}
		at := strings.LastIndexByte(rest, '@')
		if at < 0 {
			continue
		}
		if _, pw, ok := strings.Cut(rest[:at], ":"); ok {
			add(pw)
			if u, err := url.PathUnescape(pw); err == nil {
				add(u)
			}
		}
	}
	// The longest first, so a secret containing another goes whole.
	slices.SortFunc(r, func(a, b string) int { return len(b) - len(a) })
	return r
}

// errorf is fmt.Errorf with every secret replaced by "[redacted]". The
// error matches what it wraps with errors.Is, without handing out the
// wrapped error's unredacted text.
func (r redactor) errorf(format string, a ...any) error {
	err := fmt.Errorf(format, a...)
	msg := err.Error()
	for _, s := range r {
		msg = strings.ReplaceAll(msg, s, "[redacted]")
	}
	return &redactedError{msg: msg, err: err}
}

type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string        { return e.msg }
func (e *redactedError) Is(target error) bool { return errors.Is(e.err, target) }

// URLFor returns the URL asked for key.
func (p *Provider) URLFor(key hooks.PublicKey) string {
	u := p.cfg.URL
	switch {
	case strings.Contains(u, "{key}"):
		return strings.ReplaceAll(u, "{key}", base64.URLEncoding.EncodeToString(key[:]))
	case strings.Contains(u, "{hex}"):
		return strings.ReplaceAll(u, "{hex}", key.Hex())
	}
	return strings.TrimSuffix(u, "/") + "/" + base64.URLEncoding.EncodeToString(key[:])
}

// LookupPeer implements hooks.Provider.
func (p *Provider) LookupPeer(ctx context.Context, key hooks.PublicKey) (hooks.PeerConfig, error) {
	u := p.URLFor(key)
	cfg, err := p.ask(ctx, u)
	if err != nil {
		return cfg, err
	}
	if err := cfg.Validate(key); err != nil {
		return cfg, p.redact.errorf("failed to decode answer from %q: %w", u, err)
	}
	return cfg, nil
}

// LookupAddr implements hooks.AddrProvider, when Config.AddrURL is set.
func (p *Provider) LookupAddr(ctx context.Context, addr netip.Addr) (hooks.PeerConfig, error) {
	if p.cfg.AddrURL == "" {
		return hooks.PeerConfig{}, p.redact.errorf("failed to look up address %s: no address URL configured: %w", addr, errors.ErrUnsupported)
	}
	u := strings.ReplaceAll(p.cfg.AddrURL, "{addr}", url.QueryEscape(addr.String()))
	cfg, err := p.ask(ctx, u)
	if err != nil {
		return cfg, err
	}
	if cfg.PublicKey == (hooks.PublicKey{}) {
		return cfg, p.redact.errorf("failed to decode answer from %q: it names no public_key", u)
	}
	if err := cfg.Validate(cfg.PublicKey); err != nil {
		return cfg, p.redact.errorf("failed to decode answer from %q: %w", u, err)
	}
	return cfg, nil
}

// ask sends one GET and decodes its answer.
func (p *Provider) ask(ctx context.Context, u string) (hooks.PeerConfig, error) {
	ctx, cancel := context.WithTimeout(ctx, p.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return hooks.PeerConfig{}, p.redact.errorf("failed to ask %q: %w", u, err)
	}
	req.Header.Set("Accept", "application/json")
	if p.cfg.Token != "" {
		req.Header.Set("Authorization", "Bearer "+p.cfg.Token)
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return hooks.PeerConfig{}, p.redact.errorf("failed to ask %q: %w", u, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	if err != nil {
		return hooks.PeerConfig{}, p.redact.errorf("failed to read answer from %q: %w", u, err)
	}
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusNotFound, http.StatusGone:
		return hooks.PeerConfig{}, hooks.ErrUnknownPeer
	case http.StatusNotImplemented:
		return hooks.PeerConfig{}, p.redact.errorf("failed to ask %q: status %s: %w", u, resp.Status, errors.ErrUnsupported)
	default:
		return hooks.PeerConfig{}, p.redact.errorf("failed to ask %q: status %s", u, resp.Status)
	}
	if len(body) > maxBody {
		return hooks.PeerConfig{}, p.redact.errorf("failed to read answer from %q: longer than %d bytes", u, maxBody)
	}
	var jp Peer
	if err := json.Unmarshal(body, &jp); err != nil {
		return hooks.PeerConfig{}, p.redact.errorf("failed to decode answer from %q: %w", u, err)
	}
	cfg, err := jp.Config()
	if err != nil {
		return cfg, p.redact.errorf("failed to decode answer from %q: %w", u, err)
	}
	return cfg, nil
}

// Config converts the JSON form to a PeerConfig.
func (jp Peer) Config() (hooks.PeerConfig, error) {
	var cfg hooks.PeerConfig
	if jp.PublicKey != "" {
		k, err := hooks.ParsePublicKey(jp.PublicKey)
		if err != nil {
			return cfg, err
		}
		cfg.PublicKey = k
	}
	for _, s := range jp.AllowedIPs {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return cfg, fmt.Errorf("failed to parse allowed IP %q: %w", s, err)
		}
		cfg.AllowedIPs = append(cfg.AllowedIPs, p)
	}
	if jp.PresharedKey != "" {
		b, err := base64.StdEncoding.DecodeString(jp.PresharedKey)
		if err != nil || len(b) != 32 {
			return cfg, fmt.Errorf("failed to parse preshared key: not base64 of 32 bytes")
		}
		copy(cfg.PresharedKey[:], b)
	}
	if jp.PersistentKeepalive < 0 || jp.PersistentKeepalive > 65535 {
		return cfg, fmt.Errorf("failed to parse persistent keepalive %d: not 0..65535", jp.PersistentKeepalive)
	}
	cfg.PersistentKeepalive = time.Duration(jp.PersistentKeepalive) * time.Second
	if jp.Endpoint != "" {
		ep, err := netip.ParseAddrPort(jp.Endpoint)
		if err != nil {
			return cfg, fmt.Errorf("failed to parse endpoint %q: %w", jp.Endpoint, err)
		}
		cfg.Endpoint = ep
	}
	return cfg, nil
}

// FromConfig converts a PeerConfig to the JSON form.
func FromConfig(key hooks.PublicKey, cfg hooks.PeerConfig) Peer {
	jp := Peer{PublicKey: key.String(), AllowedIPs: []string{}}
	for _, p := range cfg.AllowedIPs {
		jp.AllowedIPs = append(jp.AllowedIPs, p.String())
	}
	if cfg.PresharedKey != ([32]byte{}) {
		jp.PresharedKey = base64.StdEncoding.EncodeToString(cfg.PresharedKey[:])
	}
	jp.PersistentKeepalive = int(cfg.PersistentKeepalive / time.Second)
	if cfg.Endpoint.IsValid() {
		jp.Endpoint = cfg.Endpoint.String()
	}
	return jp
}

// Handler serves the protocol from p: GET <prefix>/<key> with the key in
// URL-safe or standard base64 (escaped) or hex as the last path element.
// A non-empty token is required as a bearer token.
func Handler(p hooks.Provider, token string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet {
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		if token != "" && r.Header.Get("Authorization") != "Bearer "+token {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		if r.URL.Query().Has("addr") {
			serveAddr(w, r, p)
			return
		}
		last := r.URL.Path[strings.LastIndexByte(r.URL.Path, '/')+1:]
		last = strings.NewReplacer("-", "+", "_", "/").Replace(last)
		key, err := hooks.ParsePublicKey(last)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		cfg, err := p.LookupPeer(r.Context(), key)
		writePeer(w, key, cfg, err)
	})
}

// serveAddr answers an address lookup from p, 501 if p cannot.
func serveAddr(w http.ResponseWriter, r *http.Request, p hooks.Provider) {
	ap, ok := p.(hooks.AddrProvider)
	if !ok {
		http.Error(w, "address lookups not supported", http.StatusNotImplemented)
		return
	}
	v := r.URL.Query().Get("addr")
	addr, err := netip.ParseAddr(v)
	if err != nil {
		http.Error(w, fmt.Sprintf("failed to parse address %q: %v", v, err), http.StatusBadRequest)
		return
	}
	cfg, err := ap.LookupAddr(r.Context(), addr)
	writePeer(w, cfg.PublicKey, cfg, err)
}

// writePeer writes a lookup's outcome: the peer, 404, 501 or 502.
func writePeer(w http.ResponseWriter, key hooks.PublicKey, cfg hooks.PeerConfig, err error) {
	switch {
	case errors.Is(err, hooks.ErrUnknownPeer):
		http.Error(w, "unknown peer", http.StatusNotFound)
		return
	case errors.Is(err, errors.ErrUnsupported):
		http.Error(w, err.Error(), http.StatusNotImplemented)
		return
	case err != nil:
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(FromConfig(key, cfg))
}
