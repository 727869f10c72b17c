// Package apiclient is a Go client of the gateway's HTTP API (openapi.yaml):
// it logs a client in and logs in again before the token expires, says
// utterances (with or without waiting for the answer), holds the client's
// Server-Sent-Events stream across reconnects with Last-Event-ID and jittered
// backoff, and turns every refusal into an *Error carrying the problem+json
// body. The satellite uses it; so can any other tool (a load tester, say).
//
// Credentials (the access key, tokens, tickets, intent passwords) are held as
// api.Secret and never logged nor put in an error.
package apiclient

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/ovosgw/gateway/api"
)

// Defaults for Config fields left zero.
const (
	DefaultRenewBefore    = time.Minute
	DefaultRequestTimeout = 30 * time.Second
	DefaultMinBackoff     = 500 * time.Millisecond
	DefaultMaxBackoff     = 30 * time.Second
	DefaultIdleTimeout    = 45 * time.Second
	DefaultMaxEventSize   = 1 << 20
)

// Internal bounds.
const (
	// maxBody bounds a successful JSON answer.
	maxBody = 1 << 20
	// backoffJitter spreads reconnects by ±20 % so that satellites cut off
	// together do not come back in step.
	backoffJitter = 0.2
)

// Config configures a Client. Zero fields take the defaults above.
type Config struct {
	// BaseURL is the gateway, http(s)://HOST[:PORT][/prefix]. Required.
	BaseURL string
	// ClientID is the client's id (or an alias). Required.
	ClientID string
	// AccessKey is the client's access key. Required.
	AccessKey api.Secret
	// TLSConfig is used for https (see TLSConfig); nil means the system's
	// roots. Ignored when HTTPClient is set.
	TLSConfig *tls.Config
	// HTTPClient, if set, sends every request; it must have no Timeout,
	// since streams last. Nil means a client of its own.
	HTTPClient *http.Client
	// Logger receives the client's logs; nil discards them.
	Logger *slog.Logger
	// RenewBefore is how long before its expiry a token is replaced by a
	// new login; when it is not shorter than the token's lifetime, half the
	// lifetime is used.
	RenewBefore time.Duration
	// RequestTimeout bounds each request but the stream (a wait is added to
	// it for SayAndWait).
	RequestTimeout time.Duration
	// MinBackoff and MaxBackoff bound the stream's reconnect delay, which
	// doubles after each failure, is jittered and resets once connected.
	MinBackoff, MaxBackoff time.Duration
	// IdleTimeout is how long a stream may stay silent (the gateway sends
	// a comment at least every 15 s) before it is taken for dead.
	IdleTimeout time.Duration
	// MaxEventSize bounds one stream event; a larger one is skipped (and
	// logged), the stream goes on.
	MaxEventSize int
	// UserAgent is sent with every request; empty means "ovosgw-apiclient".
	UserAgent string
}

// Client talks to one gateway as one client. Its methods are safe for
// concurrent use.
type Client struct {
	cfg  Config
	base *url.URL
	http *http.Client
	log  *slog.Logger

	// loginMu makes concurrent callers share one login.
	loginMu sync.Mutex
	mu      sync.Mutex
	sess    *session
}

// session is the current login.
type session struct {
	resp api.SessionResponse
	// renewAt and expiresAt are on this machine's clock, from expires_in
	// (not the gateway's expires_at, which a skewed clock would misread).
	renewAt, expiresAt time.Time
}

// New validates cfg and fills its defaults. It does not log in: the first
// call that needs a token does.
func New(cfg Config) (*Client, error) {
	if cfg.BaseURL == "" {
		return nil, errors.New("apiclient: BaseURL is required")
	}
	u, err := url.Parse(cfg.BaseURL)
	if err != nil {
		return nil, errors.New("apiclient: BaseURL does not parse")
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("apiclient: BaseURL scheme %q: want http or https", u.Scheme)
	}
	if u.Host == "" {
		return nil, errors.New("apiclient: BaseURL has no host")
	}
	if u.User != nil {
		return nil, errors.New("apiclient: BaseURL must not carry credentials")
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return nil, errors.New("apiclient: BaseURL must have no query or fragment")
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	u.RawPath = ""
	if cfg.ClientID == "" {
		return nil, errors.New("apiclient: ClientID is required")
	}
	if cfg.AccessKey == "" {
		return nil, errors.New("apiclient: AccessKey is required")
	}
	for _, d := range []struct {
		name string
		v    *time.Duration
		def  time.Duration
	}{
		{"RenewBefore", &cfg.RenewBefore, DefaultRenewBefore},
		{"RequestTimeout", &cfg.RequestTimeout, DefaultRequestTimeout},
		{"MinBackoff", &cfg.MinBackoff, DefaultMinBackoff},
		{"MaxBackoff", &cfg.MaxBackoff, DefaultMaxBackoff},
		{"IdleTimeout", &cfg.IdleTimeout, DefaultIdleTimeout},
	} {
		switch {
		case *d.v < 0:
			return nil, fmt.Errorf("apiclient: %s %v is negative", d.name, *d.v)
		case *d.v == 0:
			*d.v = d.def
		}
	}
	if cfg.MaxBackoff < cfg.MinBackoff {
		return nil, fmt.Errorf("apiclient: MaxBackoff %v is below MinBackoff %v", cfg.MaxBackoff, cfg.MinBackoff)
	}
	switch {
	case cfg.MaxEventSize < 0:
		return nil, errors.New("apiclient: MaxEventSize is negative")
	case cfg.MaxEventSize == 0:
		cfg.MaxEventSize = DefaultMaxEventSize
	}
	if cfg.UserAgent == "" {
		cfg.UserAgent = "ovosgw-apiclient"
	}
	hc := cfg.HTTPClient
	if hc == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		if cfg.TLSConfig != nil {
			tr.TLSClientConfig = cfg.TLSConfig.Clone()
		}
		hc = &http.Client{Transport: tr}
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Client{cfg: cfg, base: u, http: hc, log: log}, nil
}

// ClientID is the client id the Client logs in with.
func (c *Client) ClientID() string { return c.cfg.ClientID }

// Login logs in now (POST /v1/sessions), replacing the current session, and
// returns the new one. A wrong id or key is an *Error with status 401 (and
// counts as a failed attempt at the gateway: do not retry it blindly).
func (c *Client) Login(ctx context.Context) (api.SessionResponse, error) {
	c.loginMu.Lock()
	defer c.loginMu.Unlock()
	return c.login(ctx)
}

// login must be called with loginMu held.
func (c *Client) login(ctx context.Context) (api.SessionResponse, error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.RequestTimeout)
	defer cancel()
	start := time.Now()
	var resp api.SessionResponse
	req := api.SessionRequest{ClientID: c.cfg.ClientID, AccessKey: c.cfg.AccessKey}
	if err := c.send(ctx, http.MethodPost, "/v1/sessions", "", nil, req, &resp, http.StatusCreated); err != nil {
		return api.SessionResponse{}, fmt.Errorf("apiclient: log in as %s: %w", c.cfg.ClientID, err)
	}
	if resp.Token == "" || resp.ExpiresIn <= 0 {
		return api.SessionResponse{}, fmt.Errorf("apiclient: log in as %s: the gateway answered no token", c.cfg.ClientID)
	}
	life := time.Duration(resp.ExpiresIn) * time.Second
	margin := c.cfg.RenewBefore
	if margin >= life {
		margin = life / 2
	}
	s := &session{resp: resp, expiresAt: start.Add(life), renewAt: start.Add(life - margin)}
	c.mu.Lock()
	c.sess = s
	c.mu.Unlock()
	c.log.Info("logged in", "client_id", resp.ClientID, "session_id", resp.SessionID, "expires_in", life)
	return resp, nil
}

// Session returns the current session, logging in first when there is none
// or when its token is due for renewal (RenewBefore its expiry).
func (c *Client) Session(ctx context.Context) (api.SessionResponse, error) {
	s, err := c.session(ctx)
	if err != nil {
		return api.SessionResponse{}, err
	}
	return s.resp, nil
}

func (c *Client) session(ctx context.Context) (*session, error) {
	if s := c.fresh(); s != nil {
		return s, nil
	}
	c.loginMu.Lock()
	defer c.loginMu.Unlock()
	if s := c.fresh(); s != nil { // another caller just logged in
		return s, nil
	}
	if _, err := c.login(ctx); err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sess, nil
}

// fresh returns the current session if its token is not yet due for renewal.
func (c *Client) fresh() *session {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.sess != nil && time.Now().Before(c.sess.renewAt) {
		return c.sess
	}
	return nil
}

// invalidate forgets the session whose token was refused, unless another
// login already replaced it.
func (c *Client) invalidate(tok api.Secret) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.sess != nil && c.sess.resp.Token == tok {
		c.sess = nil
	}
}

// call sends an authenticated JSON request; on 401 it logs in again once and
// resends (the token may have been revoked or expired early).
func (c *Client) call(ctx context.Context, method, path string, query url.Values, body, out any, want int, timeout time.Duration) error {
	for attempt := 0; ; attempt++ {
		s, err := c.session(ctx)
		if err != nil {
			return err
		}
		rctx, cancel := context.WithTimeout(ctx, timeout)
		err = c.send(rctx, method, path, s.resp.Token, query, body, out, want)
		cancel()
		var e *Error
		if attempt == 0 && errors.As(err, &e) && e.Status == http.StatusUnauthorized {
			c.invalidate(s.resp.Token)
			continue
		}
		return err
	}
}

// send sends one request with an optional Bearer token and JSON body, and
// decodes a JSON answer with status want into out. ctx must bound it.
func (c *Client) send(ctx context.Context, method, path string, token api.Secret, query url.Values, body, out any, want int) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("encode %s %s: %w", method, path, err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.url(path, query), rd)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", c.cfg.UserAgent)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token.Reveal())
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, transportError(err))
	}
	defer resp.Body.Close()
	if resp.StatusCode != want {
		if resp.StatusCode >= 200 && resp.StatusCode < 300 {
			return fmt.Errorf("%s %s: unexpected status %d", method, path, resp.StatusCode)
		}
		return readError(method, path, resp)
	}
	if out == nil {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxBody))
		return nil
	}
	dec := json.NewDecoder(io.LimitReader(resp.Body, maxBody))
	if err := dec.Decode(out); err != nil {
		return fmt.Errorf("%s %s: decode the answer: %w", method, path, err)
	}
	return nil
}

// url joins the base URL, a path and a query.
func (c *Client) url(path string, query url.Values) string {
	u := *c.base
	u.Path = c.base.Path + path
	u.RawQuery = query.Encode()
	return u.String()
}

// transportError strips the URL from a *url.Error (it names only the
// gateway, but a caller's log has it already) and keeps the cause.
func transportError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// jitter spreads d by ±backoffJitter.
func jitter(d time.Duration) time.Duration {
	spread := time.Duration(float64(d) * backoffJitter)
	if spread > 0 {
		d += rand.N(2*spread+1) - spread
	}
	return d
}

// sleep waits d or until ctx is done, and reports whether it waited d.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
