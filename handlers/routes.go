package handlers

import (
	"net/http"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/ovosgw/gateway/api"
	"github.com/ovosgw/gateway/handlers/openai"
	"github.com/ovosgw/gateway/internal/problem"
	"github.com/ovosgw/gateway/middleware"
)

// routes is the whole API in one place. The stream route sits outside any
// body limit or body timeout: it lives as long as the session.
func (s *Server) routes() http.Handler {
	r := chi.NewRouter()
	r.Use(
		middleware.RequestID,
		middleware.AccessLog(s.log, s.cfg.Observe),
		middleware.Recover(s.log),
		middleware.ClientIP(s.cfg.TrustedProxies),
	)
	if s.deps.Blacklist != nil {
		// Health checks answer whatever the address (a banned proxy is
		// still told the server is up), and the admin routes answer the
		// admin token from any address (a ban must not lock the admin out
		// of lifting it).
		r.Use(middleware.BlacklistAdminPasses(s.deps.Blacklist, s.deps.Sessions, "/healthz", "/readyz"))
	}
	r.Use(middleware.SecurityHeaders)
	if s.cfg.AllowedHosts != nil {
		r.Use(middleware.AllowedHosts(s.cfg.AllowedHosts))
	}
	r.Use(middleware.CORS(s.cfg.CORSOrigins), middleware.RefuseQueryCredentials)
	r.NotFound(s.wrap(func(w http.ResponseWriter, r *http.Request) error {
		return api.Errorf(api.ENOTFOUND, "no such route")
	}))
	r.MethodNotAllowed(s.wrap(func(w http.ResponseWriter, r *http.Request) error {
		allow := allowed(r)
		if len(allow) == 0 {
			// A made-up method on a path no route serves.
			return api.Errorf(api.ENOTFOUND, "no such route")
		}
		// RFC 9110, section 15.5.6: a 405 lists the methods the resource has.
		w.Header().Set("Allow", strings.Join(allow, ", "))
		return api.Errorf(api.EMETHOD, "method %s is not allowed here", r.Method)
	}))

	// Public. What answers GET answers HEAD too (RFC 9110, section 9.3.2),
	// except the event stream, where a HEAD would authenticate, redeem a
	// ticket and take a stream slot for no content.
	getHead(r, "/healthz", s.wrap(s.handleHealthz))
	getHead(r, "/readyz", s.wrap(s.handleReadyz))
	getHead(r, "/openapi.yaml", s.wrap(s.handleOpenAPI))
	if s.cfg.Metrics != nil {
		if s.cfg.MetricsAdmin {
			getHead(r.With(middleware.RequireAdmin(s.deps.Sessions, s.cfg.AuthFailed)), "/metrics", s.cfg.Metrics)
		} else {
			getHead(r, "/metrics", s.cfg.Metrics)
		}
	}
	if s.cfg.Console != nil {
		getHead(r, "/", s.cfg.Console)
		getHead(r, "/assets/*", files(s.cfg.Console))
	}

	// The stream authenticates itself (Bearer, cookie or ticket) and is not
	// under the body limit.
	r.Get("/v1/clients/{client}/events", s.wrap(s.handleEvents))

	// OpenAI's chat completions, with a session token or a client key
	// (handlers/openai): every refusal also carries OpenAI's error object,
	// and a request may carry a long history. The body timeout is lifted
	// once the body is in, so a streamed answer is under none.
	r.Group(func(r chi.Router) {
		r.Use(
			openai.Errors,
			middleware.BodyLimit(s.cfg.MaxChatBodyBytes),
			middleware.BodyTimeout(s.cfg.BodyTimeout),
			middleware.RequireClientOrKey(s.deps.Sessions, s.deps.Sessions, s.cfg.AuthFailed),
		)
		getHead(r, "/v1/models", http.HandlerFunc(s.openai.ServeModels))
		r.With(
			s.utteranceLimits(),
		).Post("/v1/chat/completions", s.openai.ServeChat)
	})

	r.Group(func(r chi.Router) {
		r.Use(middleware.BodyLimit(s.cfg.MaxBodyBytes), middleware.BodyTimeout(s.cfg.BodyTimeout))
		r.With(s.limit(s.deps.Limits.LoginPerAddr, middleware.ByAddr)).Post("/v1/sessions", s.wrap(s.handleLogin))
		// A refresh authenticates itself: a Bearer token, or the console's
		// cookie from the gateway's own origin.
		r.Post("/v1/sessions/current/refresh", s.wrap(s.handleRefresh))

		// Clients, with a session token.
		r.Group(func(r chi.Router) {
			r.Use(middleware.RequireClient(s.deps.Sessions, s.cfg.AuthFailed))
			r.Delete("/v1/sessions/current", s.wrap(s.handleLogout))
			r.Post("/v1/sessions/current/ticket", s.wrap(s.handleTicket))
			getHead(r, "/v1/clients/me", s.wrap(s.handleMe))
			r.Put("/v1/clients/me/names", s.wrap(s.handleSetNames))
			r.With(
				s.utteranceLimits(),
			).Post("/v1/utterances", s.wrap(s.handleUtterance))
		})

		// Home Assistant's conversation API, with a session token or a
		// client key (handlers/hass).
		r.Group(func(r chi.Router) {
			r.Use(middleware.RequireClientOrKey(s.deps.Sessions, s.deps.Sessions, s.cfg.AuthFailed))
			r.With(
				s.utteranceLimits(),
			).Method(http.MethodPost, "/api/conversation/process", s.hass)
		})

		// The admin, with the admin token.
		r.Group(func(r chi.Router) {
			r.Use(middleware.RequireAdmin(s.deps.Sessions, s.cfg.AuthFailed))
			getHead(r, "/v1/admin/clients", s.wrap(s.handleListClients))
			r.Post("/v1/admin/clients", s.wrap(s.handleCreateClient))
			r.Patch("/v1/admin/clients/{id}", s.wrap(s.handleRenameClient))
			r.Delete("/v1/admin/clients/{id}", s.wrap(s.handleDeleteClient))
			r.Post("/v1/admin/clients/{id}/key", s.wrap(s.handleRotateKey))
			getHead(r, "/v1/admin/buses", s.wrap(s.handleListBuses))
			if s.deps.Blacklist != nil {
				getHead(r, "/v1/admin/blacklist", s.wrap(s.handleListBlacklist))
				r.Post("/v1/admin/blacklist", s.wrap(s.handleAddBlacklist))
				r.Delete("/v1/admin/blacklist/{entry}", s.wrap(s.handleRemoveBlacklist))
			}
			if s.deps.ProtectedIntents != nil {
				getHead(r, "/v1/admin/protected-intents", s.wrap(s.handleListProtected))
				r.Put("/v1/admin/protected-intents/{pattern}", s.wrap(s.handleProtect))
				r.Delete("/v1/admin/protected-intents/{pattern}", s.wrap(s.handleUnprotect))
			}
		})
	})
	return r
}

// files serves h's files but never a directory's listing (/assets/).
func files(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/") {
			problem.Write(w, r, api.Errorf(api.ENOTFOUND, "no such file"))
			return
		}
		h.ServeHTTP(w, r)
	})
}

// getHead serves h for GET and HEAD (net/http sends no body for HEAD).
func getHead(r chi.Router, pattern string, h http.Handler) {
	r.Method(http.MethodGet, pattern, h)
	r.Method(http.MethodHead, pattern, h)
}

// methods are the methods a route may serve, in the order Allow lists them.
var methods = []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete}

// allowed lists the methods the router serves on r's path.
func allowed(r *http.Request) []string {
	rctx := chi.RouteContext(r.Context())
	if rctx == nil || rctx.Routes == nil {
		return nil
	}
	path := r.URL.RawPath
	if path == "" {
		path = r.URL.Path
	}
	var out []string
	for _, m := range methods {
		if rctx.Routes.Match(chi.NewRouteContext(), m, path) {
			out = append(out, m)
		}
	}
	return out
}

// limit is a rate limit, or nothing when l is nil.
func (s *Server) limit(l middleware.Limiter, key func(*http.Request) string) func(http.Handler) http.Handler {
	if l == nil {
		return func(next http.Handler) http.Handler { return next }
	}
	return middleware.RateLimit(l, key)
}

// utteranceLimits are the per-client and per-address limits of a route
// that takes an utterance, checked in one step.
func (s *Server) utteranceLimits() func(http.Handler) http.Handler {
	l := s.deps.Limits
	if l.UtterancePerClient == nil {
		return s.limit(l.UtterancePerAddr, middleware.ByAddr)
	}
	return middleware.RateLimitPair(l.UtterancePerClient, middleware.ByClient, l.UtterancePerAddr, middleware.ByAddr)
}

// wrap adapts a handlerFunc: a returned error goes to the one error writer.
func (s *Server) wrap(h handlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			problem.Write(w, r, err)
		}
	}
}
