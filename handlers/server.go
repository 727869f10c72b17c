// Package handlers is the gateway's HTTP API: the Server, its routes (one
// function shows them all), JSON and problem+json helpers, and the
// Server-Sent-Events handler. Its dependencies are small interfaces declared
// here and implemented by the services under internal/.
package handlers

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/netip"
	"sync"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/ovosgw/gateway/api"
	"github.com/ovosgw/gateway/handlers/hass"
	"github.com/ovosgw/gateway/handlers/openai"
	"github.com/ovosgw/gateway/internal/hub"
	"github.com/ovosgw/gateway/middleware"
)

// Sessions logs clients in and out and checks their tokens.
type Sessions interface {
	middleware.SessionVerifier
	middleware.AdminVerifier
	middleware.KeyVerifier
	Login(ctx context.Context, r api.SessionRequest, addr netip.Addr) (api.SessionResponse, error)
	Logout(ctx context.Context, id api.Identity) error
	// Refresh gives a session a new token and revokes the one it had.
	Refresh(ctx context.Context, id api.Identity) (api.SessionResponse, error)
	Ticket(ctx context.Context, id api.Identity) (api.TicketResponse, error)
	// PeekTicket checks a stream ticket as RedeemTicket does, without
	// spending it; RedeemTicket spends it.
	PeekTicket(ctx context.Context, ticket string) (api.Identity, error)
	RedeemTicket(ctx context.Context, ticket string) (api.Identity, error)
}

// Clients is the client registry as the API sees it.
type Clients interface {
	Profile(ctx context.Context, id string) (api.ClientProfile, error)
	SetNames(ctx context.Context, id string, r api.NamesRequest) (api.ClientProfile, error)
	// Resolve maps an id or alias to the client's id (ENOTFOUND otherwise).
	Resolve(ctx context.Context, idOrAlias string) (string, error)
	List(ctx context.Context) ([]api.AdminClient, error)
	Create(ctx context.Context, r api.CreateClientRequest) (api.ClientKeyResponse, error)
	Rename(ctx context.Context, id string, r api.NamesRequest) (api.AdminClient, error)
	Delete(ctx context.Context, id string) error
	RotateKey(ctx context.Context, id string) (api.ClientKeyResponse, error)
}

// Utterances puts what clients say on the bus. With wait > 0 it returns the
// result once handling ends (or the wait runs out); otherwise it returns as
// soon as the utterance is on the bus.
type Utterances interface {
	Say(ctx context.Context, id api.Identity, addr netip.Addr, r api.UtteranceRequest, wait time.Duration) (api.UtteranceResult, error)
	openai.Talker
}

// Streams hands out subscriptions to clients' event streams.
type Streams interface {
	SubscribeKey(clientID, sessionID, lastEventID string, keyVersion int64) *hub.Subscription
}

// Readiness says whether the gateway can serve utterances (at least one of
// its buses is up) and, when not, why; it lists the buses with their state
// for /readyz and, in more detail, for the admin (GET /v1/admin/buses).
type Readiness interface {
	Ready() (bool, string)
	States() []api.BusState
	Infos() []api.BusInfo
}

// Blacklist is the IP blacklist as the admin routes manage it.
type Blacklist interface {
	middleware.Blocker
	List(ctx context.Context) ([]api.BlacklistEntry, error)
	Add(ctx context.Context, r api.BlacklistRequest) (api.BlacklistEntry, error)
	Remove(ctx context.Context, cidr string) error
}

// ProtectedIntents manages the per-intent passwords.
type ProtectedIntents interface {
	List(ctx context.Context) ([]api.ProtectedIntent, error)
	Protect(ctx context.Context, pattern string, password api.Secret) (api.ProtectedIntent, error)
	Unprotect(ctx context.Context, pattern string) error
}

// Caps bounds how many connections one key (a client, an address) holds open.
type Caps interface {
	Acquire(key string) (release func(), ok bool)
}

// Limits are the rate limits and connection caps; a nil member does not limit.
type Limits struct {
	LoginPerAddr       middleware.Limiter
	UtterancePerClient middleware.Limiter
	UtterancePerAddr   middleware.Limiter
	StreamsPerClient   Caps
	StreamsPerAddr     Caps
}

// Config is the HTTP layer's own configuration.
type Config struct {
	Logger *slog.Logger
	// MaxBodyBytes caps JSON request bodies (default 64 KiB).
	MaxBodyBytes int64
	// BodyTimeout bounds the time a client takes to send a request body
	// (default 10s; the event stream has none).
	BodyTimeout time.Duration
	// MaxChatBodyBytes caps chat completion requests, which carry the
	// client's whole history (default 1 MiB).
	MaxChatBodyBytes int64
	// TrustedProxies are the peers whose X-Forwarded-For is believed.
	TrustedProxies []netip.Prefix
	// SecureCookies marks the session cookie Secure (set when serving TLS).
	SecureCookies bool
	// Heartbeat is the longest a stream stays silent (default 15s).
	Heartbeat time.Duration
	// WriteTimeout bounds each write to a stream (default 10s).
	WriteTimeout time.Duration
	// Retry is the reconnection delay hinted at the start of a stream (default 2s).
	Retry time.Duration
	// MaxWait is the longest ?wait= accepted (default 2m).
	MaxWait time.Duration
	// Metrics serves /metrics when not nil; MetricsAdmin requires the admin token for it.
	Metrics      http.Handler
	MetricsAdmin bool
	// OpenAPI is the document served at /openapi.yaml.
	OpenAPI []byte
	// Console serves the web console at / (and its assets).
	Console http.Handler
	// Observe, when not nil, is told of every finished request.
	Observe func(r *http.Request, route string, status int, d time.Duration)
	// AuthFailed, when not nil, is told of every credential refused at the
	// edge (a token, a client key, the admin token, a stream ticket); a
	// failed login is recorded by Sessions.Login itself.
	AuthFailed func(r *http.Request, err error)
	// CORSOrigins may call the API from their pages (no credentials).
	CORSOrigins []string
	// AllowedHosts are the host names the API answers to (the Host header;
	// IP addresses always, "*" any name); nil does not check the Host.
	AllowedHosts []string
}

// Deps are the services the API fronts. Blacklist and ProtectedIntents may
// be nil: their routes then answer 404.
type Deps struct {
	Sessions         Sessions
	Clients          Clients
	Utterances       Utterances
	Streams          Streams
	Ready            Readiness
	Blacklist        Blacklist
	ProtectedIntents ProtectedIntents
	Limits           Limits
}

// CookieName is the browser's session cookie.
const CookieName = "gw_session"

// Server is the gateway's HTTP API.
type Server struct {
	cfg  Config
	deps Deps
	log  *slog.Logger

	closing   chan struct{}
	closeOnce sync.Once
	detached  detachedStreams
	handler   http.Handler
	openai    *openai.Handler
	hass      *hass.Handler
}

// New validates cfg and deps, fills defaults and builds the routes.
func New(cfg Config, deps Deps) (*Server, error) {
	if deps.Sessions == nil || deps.Clients == nil || deps.Utterances == nil || deps.Streams == nil || deps.Ready == nil {
		return nil, errors.New("handlers: Sessions, Clients, Utterances, Streams and Ready are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = 64 << 10
	}
	if cfg.BodyTimeout <= 0 {
		cfg.BodyTimeout = 10 * time.Second
	}
	if cfg.MaxChatBodyBytes <= 0 {
		cfg.MaxChatBodyBytes = 1 << 20
	}
	if cfg.Heartbeat <= 0 {
		cfg.Heartbeat = 15 * time.Second
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = 10 * time.Second
	}
	if cfg.Retry <= 0 {
		cfg.Retry = 2 * time.Second
	}
	if cfg.MaxWait <= 0 {
		cfg.MaxWait = 2 * time.Minute
	}
	s := &Server{cfg: cfg, deps: deps, log: cfg.Logger, closing: make(chan struct{})}
	var err error
	s.openai, err = openai.New(openai.Config{
		MaxWait: cfg.MaxWait, Heartbeat: cfg.Heartbeat, WriteTimeout: cfg.WriteTimeout,
		Closing: s.closing,
	}, deps.Utterances)
	if err != nil {
		return nil, err
	}
	if s.hass, err = hass.New(hass.Config{MaxWait: cfg.MaxWait}, deps.Utterances); err != nil {
		return nil, err
	}
	s.handler = s.routes()
	return s, nil
}

// ServeHTTP serves the API.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

// Close tells every open stream to end (with a reconnect hint) and makes new
// streams refuse; call it before http.Server.Shutdown, which does not end
// streaming handlers by itself.
func (s *Server) Close() { s.closeOnce.Do(func() { close(s.closing) }) }

// Wait waits until every stream running on a goroutine of its own (an
// HTTP/1.1 stream, taken over from net/http) has ended, or ctx ends. After
// Close they end at once, each with its reconnect hint. Call it after
// http.Server.Shutdown, which waits for the other streams (they run on
// their handler's goroutine) but does not know of these.
func (s *Server) Wait(ctx context.Context) error { return s.detached.wait(ctx) }

// handlerFunc is a handler that returns its error to the one error path.
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

// Walk visits every route of the API (for the test that compares them with
// openapi.yaml).
func (s *Server) Walk(fn chi.WalkFunc) error {
	return chi.Walk(s.handler.(chi.Routes), fn)
}
