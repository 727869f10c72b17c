package handlers

import (
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/ovosgw/gateway/api"
	"github.com/ovosgw/gateway/internal/problem"
	"github.com/ovosgw/gateway/middleware"
)

// routes is the whole API in one place. The stream route sits outside any
// body limit or timeout: it lives as long as the session.
func (s *Server) routes() http.Handler {
	r := chi.NewRouter()
	r.Use(
		middleware.RequestID,
		middleware.AccessLog(s.log, s.cfg.Observe),
		middleware.Recover(s.log),
		middleware.ClientIP(s.cfg.TrustedProxies),
	)
	if s.deps.Blacklist != nil {
		r.Use(middleware.Blacklist(s.deps.Blacklist))
	}
	r.Use(middleware.SecurityHeaders, middleware.CORS(s.cfg.CORSOrigins), middleware.RefuseQueryCredentials)
	r.NotFound(s.wrap(func(w http.ResponseWriter, r *http.Request) error {
		return api.Errorf(api.ENOTFOUND, "no such route")
	}))
	r.MethodNotAllowed(s.wrap(func(w http.ResponseWriter, r *http.Request) error {
		return api.Errorf(api.EMETHOD, "method %s is not allowed here", r.Method)
	}))

	// Public.
	r.Get("/healthz", s.wrap(s.handleHealthz))
	r.Get("/readyz", s.wrap(s.handleReadyz))
	r.Get("/openapi.yaml", s.wrap(s.handleOpenAPI))
	if s.cfg.Metrics != nil {
		if s.cfg.MetricsAdmin {
			r.With(middleware.RequireAdmin(s.deps.Sessions, s.cfg.AuthFailed)).Method(http.MethodGet, "/metrics", s.cfg.Metrics)
		} else {
			r.Method(http.MethodGet, "/metrics", s.cfg.Metrics)
		}
	}
	if s.cfg.Console != nil {
		r.Method(http.MethodGet, "/", s.cfg.Console)
		r.Method(http.MethodGet, "/assets/*", s.cfg.Console)
	}

	// The stream authenticates itself (Bearer, cookie or ticket) and is not
	// under the body limit.
	r.Get("/v1/clients/{client}/events", s.wrap(s.handleEvents))

	r.Group(func(r chi.Router) {
		r.Use(middleware.BodyLimit(s.cfg.MaxBodyBytes))
		r.With(s.limit(s.deps.Limits.LoginPerAddr, middleware.ByAddr)).Post("/v1/sessions", s.wrap(s.handleLogin))

		// Clients, with a session token.
		r.Group(func(r chi.Router) {
			r.Use(middleware.RequireClient(s.deps.Sessions, s.cfg.AuthFailed))
			r.Delete("/v1/sessions/current", s.wrap(s.handleLogout))
			r.Post("/v1/sessions/current/ticket", s.wrap(s.handleTicket))
			r.Get("/v1/clients/me", s.wrap(s.handleMe))
			r.Put("/v1/clients/me/names", s.wrap(s.handleSetNames))
			r.With(
				s.limit(s.deps.Limits.UtterancePerClient, middleware.ByClient),
				s.limit(s.deps.Limits.UtterancePerAddr, middleware.ByAddr),
			).Post("/v1/utterances", s.wrap(s.handleUtterance))
		})

		// The admin, with the admin token.
		r.Group(func(r chi.Router) {
			r.Use(middleware.RequireAdmin(s.deps.Sessions, s.cfg.AuthFailed))
			r.Get("/v1/admin/clients", s.wrap(s.handleListClients))
			r.Post("/v1/admin/clients", s.wrap(s.handleCreateClient))
			r.Patch("/v1/admin/clients/{id}", s.wrap(s.handleRenameClient))
			r.Delete("/v1/admin/clients/{id}", s.wrap(s.handleDeleteClient))
			r.Post("/v1/admin/clients/{id}/key", s.wrap(s.handleRotateKey))
			if s.deps.Blacklist != nil {
				r.Get("/v1/admin/blacklist", s.wrap(s.handleListBlacklist))
				r.Post("/v1/admin/blacklist", s.wrap(s.handleAddBlacklist))
				r.Delete("/v1/admin/blacklist/{entry}", s.wrap(s.handleRemoveBlacklist))
			}
			if s.deps.ProtectedIntents != nil {
				r.Get("/v1/admin/protected-intents", s.wrap(s.handleListProtected))
				r.Put("/v1/admin/protected-intents/{pattern}", s.wrap(s.handleProtect))
				r.Delete("/v1/admin/protected-intents/{pattern}", s.wrap(s.handleUnprotect))
			}
		})
	})
	return r
}

// limit is a rate limit, or nothing when l is nil.
func (s *Server) limit(l middleware.Limiter, key func(*http.Request) string) func(http.Handler) http.Handler {
	if l == nil {
		return func(next http.Handler) http.Handler { return next }
	}
	return middleware.RateLimit(l, key)
}

// wrap adapts a handlerFunc: a returned error goes to the one error writer.
func (s *Server) wrap(h handlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			problem.Write(w, r, err)
		}
	}
}
